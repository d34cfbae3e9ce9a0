"""The media service (gRPC): Uploads and their processing jobs (MongoDB)."""
