"""TaskQueue's common package: every service imports its models, settings and contracts from here."""
