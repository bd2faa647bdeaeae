/*
 * Completing a restored file in one call. On a busy ext4 every call that changes an inode
 * (chown, chmod, utimes) waits for a journal handle, so the ones that would change nothing are
 * skipped: fstat (which changes nothing) says whether the owner and mode are already right, as
 * they mostly are when the restoring user owns the files and creates them with their final
 * permission bits. Times go through the descriptor, not the path.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int get_i64(napi_env env, napi_value v, int64_t *out) {
  bool lossless;
  return napi_get_value_bigint_int64(env, v, out, &lossless) == napi_ok ? 0 : -1;
}

/* Sets the errno name of a failed step on `result`, creating the object on first need. */
static void note(napi_env env, napi_value *result, const char *step, int err) {
  if (*result == NULL) napi_create_object(env, result);
  const char *name = strerrorname_np(err); /* glibc >= 2.32: "EPERM", "EIO", ... */
  napi_value code;
  napi_create_string_utf8(env, name ? name : "EIO", NAPI_AUTO_LENGTH, &code);
  napi_set_named_property(env, *result, step, code);
}

/*
 * finishFile(fd: number, uid: number, gid: number, mode: number, mtimeNs: bigint)
 *   -> null | { owner?: string, metadata?: string }
 * Owner first (chown clears setuid and setgid), then mode, then times (atime = mtime). The
 * descriptor stays open: Node closes it, as it tracks the descriptors a worker thread opens.
 */
static napi_value finish_file(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  uint32_t uid, gid, mode;
  int64_t mtime;
  if (argc < 5 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_uint32(env, argv[1], &uid) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &gid) != napi_ok || napi_get_value_uint32(env, argv[3], &mode) != napi_ok ||
      get_i64(env, argv[4], &mtime)) {
    napi_throw_type_error(env, NULL, "finishFile(fd: number, uid: number, gid: number, mode: number, mtimeNs: bigint)");
    return NULL;
  }
  napi_value result = NULL;
  struct stat st;
  int known = fstat(fd, &st) == 0;
  int chowned = 0;
  if (!known || st.st_uid != uid || st.st_gid != gid) {
    if (fchown(fd, uid, gid) != 0) note(env, &result, "owner", errno);
    else chowned = 1;
  }
  int failed = 0;
  if ((!known || chowned || (st.st_mode & 07777) != (mode & 07777)) && fchmod(fd, mode & 07777) != 0) {
    note(env, &result, "metadata", errno);
    failed = 1;
  }
  struct timespec ts[2];
  ts[1].tv_sec = mtime / 1000000000;
  ts[1].tv_nsec = mtime % 1000000000;
  if (ts[1].tv_nsec < 0) { ts[1].tv_nsec += 1000000000; ts[1].tv_sec -= 1; }
  ts[0] = ts[1];
  if (!failed && futimens(fd, ts) != 0) note(env, &result, "metadata", errno);
  if (result == NULL) napi_get_null(env, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"finishFile", NULL, finish_file, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
