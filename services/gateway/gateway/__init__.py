"""TaskQueue's HTTP gateway (Flask app factory in `gateway.app`)."""
