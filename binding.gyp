{
  "targets": [
    {
      "target_name": "blake3",
      "type": "static_library",
      "sources": ["deps/blake3/blake3.c", "deps/blake3/blake3_dispatch.c", "deps/blake3/blake3_portable.c"],
      "cflags": ["-O3", "-fPIC"],
      "conditions": [
        ["target_arch=='x64'", {
          "sources": ["deps/blake3/blake3_sse2_x86-64_unix.S", "deps/blake3/blake3_sse41_x86-64_unix.S", "deps/blake3/blake3_avx2_x86-64_unix.S", "deps/blake3/blake3_avx512_x86-64_unix.S"]
        }],
        ["target_arch=='arm64'", {
          "sources": ["deps/blake3/blake3_neon.c"],
          "defines": ["BLAKE3_USE_NEON=1"]
        }],
        ["target_arch!='x64'", {
          "defines": ["BLAKE3_NO_SSE2", "BLAKE3_NO_SSE41", "BLAKE3_NO_AVX2", "BLAKE3_NO_AVX512"]
        }]
      ]
    },
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
      "include_dirs": ["deps/blake3"],
      "dependencies": ["blake3"],
      "libraries": ["-lzstd"]
    },
    {
      "target_name": "scrate_blobs",
      "sources": ["src/native/blobs.c"],
      "cflags": ["-O2", "-Wall"],
      "include_dirs": ["deps/blake3"],
      "dependencies": ["blake3"]
    },
    {
      "target_name": "scrate_fuse",
      "sources": ["src/native/fuse.c"],
      "cflags": ["-O2", "-Wall", "<!@(pkg-config --cflags fuse3)"],
      "libraries": ["<!@(pkg-config --libs fuse3)"]
    }
  ]
}
