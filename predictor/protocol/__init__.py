"""The protocol layer both servers use: v1/v2 codecs, REST and the fast path, gRPC, the
model-server bootstrap with its limits and logs, the model-directory format and Feast's Redis
key layout. Nothing here knows about Feast features or the click model."""
