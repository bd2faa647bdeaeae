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
    }
  ]
}
