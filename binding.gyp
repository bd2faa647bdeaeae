{
  "targets": [
    {
      "target_name": "scrate_posix",
      "sources": ["src/native/posix.c"],
      "cflags": ["-O2", "-Wall"]
    },
    {
      "target_name": "scrate_gear",
      "sources": ["src/native/gear.c"],
      "cflags": ["-O3", "-Wall"]
    },
    {
      "target_name": "scrate_restore",
      "sources": ["src/native/restore.c"],
      "cflags": ["-O2", "-Wall"]
    },
    {
      "target_name": "scrate_pipeline",
      "sources": ["src/native/pipeline.c"],
      "cflags": ["-O3", "-Wall"],
      "libraries": ["-lzstd"]
    },
    {
      "target_name": "scrate_blobs",
      "sources": ["src/native/blobs.c"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
