"""TaskQueue worker: claims queued tasks and runs their handlers under a time limit."""
