/*
 * The few POSIX calls Node's fs module lacks and that a faithful restore needs:
 * utimensat() with nanosecond times (fs.utimes goes through a double and loses
 * precision), mknod() for fifos and device nodes, and the size and logical block
 * size of a block device (stat reports 0 for both). And, for the backup's walk, a
 * directory listed and lstat'ed in one call: per entry, fs.lstatSync cost ~10 µs,
 * most of it building a BigIntStats object.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

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

/* One entry of list_dir: its lstat fields in the slot layout posix.ts reads (doubles, then int64s). */
#define LIST_SLOTS 12
struct entry {
  char *name;
  size_t len;
  int err;
  struct stat st;
};

static int by_name(const void *a, const void *b) {
  /* Unsigned bytes, shorter first on a tie: the order of Buffer.compare. */
  return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static void free_entries(struct entry *entries, size_t n) {
  for (size_t i = 0; i < n; i++) free(entries[i].name);
  free(entries);
}

/*
 * listDir(path: Buffer) -> { names: Buffer, ends: Uint32Array, slots: ArrayBuffer }
 * The entries of a directory but . and .., sorted by name, each with lstat's fields, or the
 * errno of an lstat that failed (an entry removed since the listing).
 */
static napi_value list_dir(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[PATH_BUF];
  if (argc < 1 || get_path(env, argv[0], path)) return throw_errno(env, ENAMETOOLONG, "scandir");
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "scandir");
  DIR *dir = fdopendir(fd);
  if (!dir) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "scandir");
  }
  size_t n = 0, cap = 64, total = 0;
  struct entry *entries = malloc(cap * sizeof *entries);
  struct dirent *d;
  int err = 0;
  for (errno = 0; entries && (d = readdir(dir)); errno = 0) {
    if (d->d_name[0] == '.' && (d->d_name[1] == 0 || (d->d_name[1] == '.' && d->d_name[2] == 0))) continue;
    if (n == cap) {
      struct entry *more = realloc(entries, (cap *= 2) * sizeof *entries);
      if (!more) { err = ENOMEM; break; }
      entries = more;
    }
    struct entry *e = &entries[n];
    e->len = strlen(d->d_name);
    e->name = strdup(d->d_name);
    if (!e->name) { err = ENOMEM; break; }
    e->err = fstatat(fd, d->d_name, &e->st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
    total += e->len;
    n++;
  }
  if (!entries) err = ENOMEM;
  else if (!err && errno) err = errno;
  closedir(dir);
  if (err) {
    if (entries) free_entries(entries, n);
    return throw_errno(env, err, "scandir");
  }
  qsort(entries, n, sizeof *entries, by_name);

  napi_value result, names, ends_buf, ends, slots_buf;
  void *names_data, *ends_data, *slots_data;
  napi_create_buffer(env, total, &names_data, &names);
  napi_create_arraybuffer(env, n * sizeof(uint32_t), &ends_data, &ends_buf);
  napi_create_typedarray(env, napi_uint32_array, n, ends_buf, 0, &ends);
  napi_create_arraybuffer(env, n * LIST_SLOTS * 8, &slots_data, &slots_buf);
  char *np = names_data;
  uint32_t *ep = ends_data;
  for (size_t i = 0; i < n; i++) {
    struct entry *e = &entries[i];
    memcpy(np, e->name, e->len);
    np += e->len;
    ep[i] = (uint32_t)(np - (char *)names_data);
    double *f = (double *)slots_data + i * LIST_SLOTS;
    int64_t *q = (int64_t *)slots_data + i * LIST_SLOTS;
    const struct stat *st = &e->st;
    if (e->err) {
      memset(f, 0, LIST_SLOTS * 8);
      f[0] = e->err;
      continue;
    }
    f[0] = 0;
    f[1] = st->st_mode;
    f[2] = st->st_nlink;
    f[3] = st->st_uid;
    f[4] = st->st_gid;
    f[5] = (double)st->st_size;
    f[6] = (double)st->st_blocks;
    q[7] = (int64_t)st->st_ino;
    q[8] = (int64_t)st->st_dev;
    q[9] = (int64_t)st->st_rdev;
    q[10] = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    q[11] = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
  }
  free_entries(entries, n);
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "names", names);
  napi_set_named_property(env, result, "ends", ends);
  napi_set_named_property(env, result, "slots", slots_buf);
  return result;
}

/* trimMalloc() */
static napi_value trim_malloc(napi_env env, napi_callback_info info) {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"setTimes", NULL, set_times, NULL, NULL, NULL, napi_default, NULL},
    {"mknod", NULL, make_node, NULL, NULL, NULL, napi_default, NULL},
    {"blockDevice", NULL, block_device, NULL, NULL, NULL, napi_default, NULL},
    {"listDir", NULL, list_dir, NULL, NULL, NULL, napi_default, NULL},
    {"trimMalloc", NULL, trim_malloc, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
