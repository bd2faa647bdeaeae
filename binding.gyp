{
  "targets": [
    {
      "target_name": "scrate_posix",
      "sources": ["src/native/posix.c"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
