/*
 * The few POSIX calls Node's fs module lacks and that a faithful restore needs:
 * utimensat() with nanosecond times (fs.utimes goes through a double and loses
 * precision), mknod() for fifos and device nodes, and the size and logical block
 * size of a block device (stat reports 0 for both).
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>

#define PATH_BUF 4096

static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  char code[32];
  snprintf(code, sizeof code, "%d", err);
  napi_value msg, error, errno_val, syscall_val, code_val;
  char text[128];
  snprintf(text, sizeof text, "%s: %s", syscall, strerror(err));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  napi_create_int32(env, -err, &errno_val);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_val);
  const char *name = strerrorname_np(err); /* glibc >= 2.32: "ENOSPC", "EROFS", ... */
  if (!name) name = "EIO";
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code_val);
  napi_set_named_property(env, error, "errno", errno_val);
  napi_set_named_property(env, error, "syscall", syscall_val);
  napi_set_named_property(env, error, "code", code_val);
  napi_throw(env, error);
  return NULL;
}

/* Paths arrive as Buffers so that names which are not valid UTF-8 survive. */
static int get_path(napi_env env, napi_value v, char *out) {
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, v, &data, &len) != napi_ok || len >= PATH_BUF) return -1;
  memcpy(out, data, len);
  out[len] = 0;
  return 0;
}

static int get_i64(napi_env env, napi_value v, int64_t *out) {
  bool lossless;
  return napi_get_value_bigint_int64(env, v, out, &lossless) == napi_ok ? 0 : -1;
}

/* utimensat(path: Buffer, atimeNs: bigint, mtimeNs: bigint, followSymlinks: boolean) */
static napi_value set_times(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[PATH_BUF];
  int64_t atime, mtime;
  bool follow = false;
  if (argc < 4 || get_path(env, argv[0], path) || get_i64(env, argv[1], &atime) ||
      get_i64(env, argv[2], &mtime) || napi_get_value_bool(env, argv[3], &follow) != napi_ok) {
    napi_throw_type_error(env, NULL, "setTimes(path: Buffer, atimeNs: bigint, mtimeNs: bigint, follow: boolean)");
    return NULL;
  }
  struct timespec ts[2];
  ts[0].tv_sec = atime / 1000000000; ts[0].tv_nsec = atime % 1000000000;
  ts[1].tv_sec = mtime / 1000000000; ts[1].tv_nsec = mtime % 1000000000;
  if (ts[0].tv_nsec < 0) { ts[0].tv_nsec += 1000000000; ts[0].tv_sec -= 1; }
  if (ts[1].tv_nsec < 0) { ts[1].tv_nsec += 1000000000; ts[1].tv_sec -= 1; }
  if (utimensat(AT_FDCWD, path, ts, follow ? 0 : AT_SYMLINK_NOFOLLOW) != 0)
    return throw_errno(env, errno, "utimensat");
  return NULL;
}

/* mknod(path: Buffer, mode: number (type and permission bits), rdev: bigint) */
static napi_value make_node(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[PATH_BUF];
  uint32_t mode;
  int64_t rdev;
  if (argc < 3 || get_path(env, argv[0], path) || napi_get_value_uint32(env, argv[1], &mode) != napi_ok ||
      get_i64(env, argv[2], &rdev)) {
    napi_throw_type_error(env, NULL, "mknod(path: Buffer, mode: number, rdev: bigint)");
    return NULL;
  }
  if (mknod(path, (mode_t)mode, (dev_t)rdev) != 0) return throw_errno(env, errno, "mknod");
  return NULL;
}

/* blockDevice(fd: number) -> { size: bigint, logicalBlockSize: number } via BLKGETSIZE64, BLKSSZGET */
static napi_value block_device(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "blockDevice(fd: number)");
    return NULL;
  }
  uint64_t size;
  int block;
  if (ioctl(fd, BLKGETSIZE64, &size) != 0) return throw_errno(env, errno, "ioctl BLKGETSIZE64");
  if (ioctl(fd, BLKSSZGET, &block) != 0) return throw_errno(env, errno, "ioctl BLKSSZGET");
  napi_value result, size_val, block_val;
  napi_create_object(env, &result);
  napi_create_bigint_uint64(env, size, &size_val);
  napi_create_int32(env, block, &block_val);
  napi_set_named_property(env, result, "size", size_val);
  napi_set_named_property(env, result, "logicalBlockSize", block_val);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"setTimes", NULL, set_times, NULL, NULL, NULL, napi_default, NULL},
    {"mknod", NULL, make_node, NULL, NULL, NULL, napi_default, NULL},
    {"blockDevice", NULL, block_device, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
