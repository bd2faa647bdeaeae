/*
 * The restorer's file system calls. Every entry is created, opened, linked, removed and given
 * its metadata beneath a directory descriptor (the target's, or one of its directories held
 * open by the walk), and no symlink on the way is followed: the tree being restored is data
 * from the repository, and a symlink it (or anyone) made inside the target must not turn a
 * later write into one outside it. Paths resolve in one openat2() with RESOLVE_BENEATH and
 * RESOLVE_NO_SYMLINKS, as fast as open() of the path; kernels before 5.6 lack it, and get an
 * openat() a component, each with O_NOFOLLOW.
 *
 * Completing a restored file in one call. On a busy ext4 every call that changes an inode
 * (chown, chmod, utimes) waits for a journal handle, so the ones that would change nothing are
 * skipped: fstat (which changes nothing) says whether the owner and mode are already right, as
 * they mostly are when the restoring user owns the files and creates them with their final
 * permission bits. Times go through the descriptor, not the path.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RESOLVE_SAFELY (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

/* Set once openat2() has answered ENOSYS (or by a test): from then on, paths are walked. */
static atomic_bool walk_paths;

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

/* Throws an Error whose `code` is the errno name, as Node's fs errors have. */
static napi_value throw_errno(napi_env env, const char *call) {
  const char *name = strerrorname_np(errno);
  if (!name) name = "EIO";
  napi_value msg, code, error;
  char text[64];
  snprintf(text, sizeof text, "%s: %s", call, name);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_throw(env, error);
  return NULL;
}

/* A relative path from a Buffer, NUL-terminated in `out` (PATH_MAX bytes); -1 with errno set if it cannot be one. */
static int get_path(napi_env env, napi_value v, char *out) {
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, v, &data, &len) != napi_ok) return errno = EINVAL, -1;
  if (len >= PATH_MAX) return errno = ENAMETOOLONG, -1;
  if (memchr(data, 0, len)) return errno = EINVAL, -1;
  memcpy(out, data, len);
  out[len] = 0;
  return 0;
}

/* Closes a descriptor opened on the way to an entry (not the caller's `dir`), keeping errno. */
static void close_opened(int fd, int dir) {
  int err = errno;
  if (fd >= 0 && fd != dir) close(fd);
  errno = err;
}

/* The fallback of open_beneath: one openat() a component, none of them a symlink or "..". */
static int open_walking(int dir, char *path, int flags, mode_t mode) {
  int at = dir;
  char *name = path;
  for (char *slash; (slash = strchr(name, '/')); name = slash + 1) {
    *slash = 0;
    if (name[0] == 0 || strcmp(name, ".") == 0) continue;
    int next = strcmp(name, "..") == 0 ? (errno = EXDEV, -1) : openat(at, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    close_opened(at, dir);
    if (next < 0) return -1;
    at = next;
  }
  int fd = strcmp(name, "..") == 0 ? (errno = EXDEV, -1) : openat(at, name, flags, mode);
  close_opened(at, dir);
  return fd;
}

/* Opens `path` beneath `dir` without following any symlink on the way (O_NOFOLLOW and O_CLOEXEC are added). */
static int open_beneath(int dir, char *path, int flags, mode_t mode) {
  flags |= O_NOFOLLOW | O_CLOEXEC;
  if (!atomic_load_explicit(&walk_paths, memory_order_relaxed)) {
    struct open_how how = {.flags = (uint64_t)flags, .mode = flags & O_CREAT ? mode : 0, .resolve = RESOLVE_SAFELY};
    int fd;
    /* EAGAIN: a rename or mount raced with the lookup (RESOLVE_BENEATH cannot then vouch for it). */
    do fd = (int)syscall(SYS_openat2, dir, path, &how, sizeof how);
    while (fd < 0 && errno == EAGAIN);
    if (fd >= 0 || errno != ENOSYS) return fd;
    atomic_store(&walk_paths, true);
  }
  return open_walking(dir, path, flags, mode);
}

/*
 * The directory that holds the last component of `path`, opened beneath `dir` (or `dir` itself
 * for a single component; close it with close_opened), and that component in *name. The
 * component must be a name: the *at() calls would otherwise reach "..".
 */
static int open_parent(int dir, char *path, char **name) {
  char *slash = strrchr(path, '/');
  *name = slash ? slash + 1 : path;
  if (**name == 0 || strcmp(*name, ".") == 0 || strcmp(*name, "..") == 0) return errno = EINVAL, -1;
  if (!slash) return dir;
  *slash = 0;
  return open_beneath(dir, path, O_PATH | O_DIRECTORY, 0);
}

/* Removes `name` in `dir`, a directory with everything in it; a symlink is removed, never followed. */
static int remove_at(int dir, const char *name) {
  if (unlinkat(dir, name, 0) == 0 || errno == ENOENT) return 0;
  if (errno != EISDIR) return -1;
  int fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  if (!d) {
    close_opened(fd, -1);
    return -1;
  }
  /*
   * Passes until one finds the directory empty (entries removed during a pass may hide others
   * from it), three at most: a directory that keeps filling fails with ENOTEMPTY.
   */
  int err = 0;
  for (int pass = 0, emptied = 0; pass < 3 && !emptied && !err; pass++) {
    emptied = 1;
    rewinddir(d);
    struct dirent *e;
    while (!err && (errno = 0, e = readdir(d))) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      emptied = 0;
      if (remove_at(fd, e->d_name) != 0) err = errno;
    }
    if (!err && errno) err = errno;
  }
  closedir(d);
  if (err) return errno = err, -1;
  return unlinkat(dir, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -1;
}

static struct timespec from_ns(int64_t ns) {
  struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
  if (ts.tv_nsec < 0) {
    ts.tv_nsec += 1000000000;
    ts.tv_sec -= 1;
  }
  return ts;
}

#define ARGS(n)                                                 \
  size_t argc = n;                                              \
  napi_value argv[n];                                           \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);         \
  if (argc < n) return napi_throw_type_error(env, NULL, USAGE), NULL

/* argv[i] as a directory descriptor and argv[i + 1] as a path beneath it; false once it has thrown. */
static bool get_dir_path(napi_env env, napi_value *argv, int i, int32_t *dir, char *path, const char *usage) {
  if (napi_get_value_int32(env, argv[i], dir) != napi_ok) return napi_throw_type_error(env, NULL, usage), false;
  if (get_path(env, argv[i + 1], path)) return throw_errno(env, "path"), false;
  return true;
}

/*
 * finishFile(fd: number, uid: number, gid: number, mode: number, mtimeNs: bigint)
 *   -> null | { owner?: string, metadata?: string }
 * Owner first (chown clears setuid and setgid), then mode, then times (atime = mtime). The
 * descriptor stays open: the caller closes it.
 */
#define USAGE "finishFile(fd: number, uid: number, gid: number, mode: number, mtimeNs: bigint)"
static napi_value finish_file(napi_env env, napi_callback_info info) {
  ARGS(5);
  int32_t fd;
  uint32_t uid, gid, mode;
  int64_t mtime;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_uint32(env, argv[1], &uid) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &gid) != napi_ok || napi_get_value_uint32(env, argv[3], &mode) != napi_ok ||
      get_i64(env, argv[4], &mtime))
    return napi_throw_type_error(env, NULL, USAGE), NULL;
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
  struct timespec ts[2] = {from_ns(mtime), from_ns(mtime)};
  if (!failed && futimens(fd, ts) != 0) note(env, &result, "metadata", errno);
  if (result == NULL) napi_get_null(env, &result);
  return result;
}
#undef USAGE

/* A descriptor for JavaScript, or the error of the call that did not give one. */
static napi_value fd_or_throw(napi_env env, int fd, const char *call) {
  if (fd < 0) return throw_errno(env, call);
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

#define USAGE "open(dir: number, path: Buffer, flags: number, mode: number)"
static napi_value open_file(napi_env env, napi_callback_info info) {
  ARGS(4);
  int32_t dir;
  uint32_t flags, mode;
  char path[PATH_MAX];
  if (!get_dir_path(env, argv, 0, &dir, path, USAGE)) return NULL;
  if (napi_get_value_uint32(env, argv[2], &flags) != napi_ok || napi_get_value_uint32(env, argv[3], &mode) != napi_ok)
    return napi_throw_type_error(env, NULL, USAGE), NULL;
  return fd_or_throw(env, open_beneath(dir, path, (int)flags, mode & 07777), "open");
}
#undef USAGE

/* A directory that is there already is taken as it is; anything else there is EEXIST. */
#define USAGE "makeDir(dir: number, path: Buffer, mode: number)"
static napi_value make_dir(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t dir;
  uint32_t mode;
  char path[PATH_MAX], *name;
  if (!get_dir_path(env, argv, 0, &dir, path, USAGE)) return NULL;
  if (napi_get_value_uint32(env, argv[2], &mode) != napi_ok) return napi_throw_type_error(env, NULL, USAGE), NULL;
  int parent = open_parent(dir, path, &name);
  if (parent < 0) return throw_errno(env, "mkdir");
  bool made = mkdirat(parent, name, mode & 07777) == 0;
  int fd = made || errno == EEXIST ? openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
  /* Not a directory, or a symlink to one: in the way. */
  if (fd < 0 && !made && (errno == ENOTDIR || errno == ELOOP)) errno = EEXIST;
  close_opened(parent, dir);
  return fd_or_throw(env, fd, "mkdir");
}
#undef USAGE

#define USAGE "symlink(target: Buffer, dir: number, path: Buffer)"
static napi_value make_symlink(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t dir;
  char target[PATH_MAX], path[PATH_MAX], *name;
  if (get_path(env, argv[0], target)) return throw_errno(env, "symlink");
  if (!get_dir_path(env, argv, 1, &dir, path, USAGE)) return NULL;
  int parent = open_parent(dir, path, &name);
  int failed = parent < 0 || symlinkat(target, parent, name) != 0;
  close_opened(parent, dir);
  return failed ? throw_errno(env, "symlink") : NULL;
}
#undef USAGE

#define USAGE "mknod(dir: number, path: Buffer, mode: number, rdev: bigint)"
static napi_value make_node(napi_env env, napi_callback_info info) {
  ARGS(4);
  int32_t dir;
  uint32_t mode;
  int64_t rdev;
  char path[PATH_MAX], *name;
  if (!get_dir_path(env, argv, 0, &dir, path, USAGE)) return NULL;
  if (napi_get_value_uint32(env, argv[2], &mode) != napi_ok || get_i64(env, argv[3], &rdev)) return napi_throw_type_error(env, NULL, USAGE), NULL;
  int parent = open_parent(dir, path, &name);
  int failed = parent < 0 || mknodat(parent, name, (mode_t)mode, (dev_t)rdev) != 0;
  close_opened(parent, dir);
  return failed ? throw_errno(env, "mknod") : NULL;
}
#undef USAGE

/* A hard link `to` of `from`, both beneath `dir`; `from` itself is linked, a symlink too, never what it points to. */
#define USAGE "link(dir: number, from: Buffer, to: Buffer)"
static napi_value make_link(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t dir;
  char from[PATH_MAX], to[PATH_MAX], *from_name, *to_name;
  if (!get_dir_path(env, argv, 0, &dir, from, USAGE)) return NULL;
  if (get_path(env, argv[2], to)) return throw_errno(env, "link");
  int from_parent = open_parent(dir, from, &from_name);
  int to_parent = from_parent < 0 ? -1 : open_parent(dir, to, &to_name);
  int failed = to_parent < 0 || linkat(from_parent, from_name, to_parent, to_name, 0) != 0;
  close_opened(to_parent, dir);
  close_opened(from_parent, dir);
  return failed ? throw_errno(env, "link") : NULL;
}
#undef USAGE

/* Removes `path` and, for a directory, everything in it; nothing there is no error. */
#define USAGE "remove(dir: number, path: Buffer)"
static napi_value remove_path(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t dir;
  char path[PATH_MAX], *name;
  if (!get_dir_path(env, argv, 0, &dir, path, USAGE)) return NULL;
  int parent = open_parent(dir, path, &name);
  int failed = parent < 0 ? errno != ENOENT : remove_at(parent, name) != 0;
  close_opened(parent, dir);
  return failed ? throw_errno(env, "remove") : NULL;
}
#undef USAGE

/*
 * setMetadata(dir: number, path: Buffer, uid: number, gid: number, mode: number, mtimeNs: bigint,
 *   symlink: boolean) -> null | { owner?: string, metadata?: string }
 * finishFile for an entry that is not opened (a symlink, a fifo, a device node: opening one can
 * block or have side effects), by name in its directory: owner, mode (not a symlink's) and
 * times, without following a symlink.
 */
#define USAGE "setMetadata(dir: number, path: Buffer, uid: number, gid: number, mode: number, mtimeNs: bigint, symlink: boolean)"
static napi_value set_metadata(napi_env env, napi_callback_info info) {
  ARGS(7);
  int32_t dir;
  uint32_t uid, gid, mode;
  int64_t mtime;
  bool symlink;
  char path[PATH_MAX], *name;
  if (!get_dir_path(env, argv, 0, &dir, path, USAGE)) return NULL;
  if (napi_get_value_uint32(env, argv[2], &uid) != napi_ok || napi_get_value_uint32(env, argv[3], &gid) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &mode) != napi_ok || get_i64(env, argv[5], &mtime) ||
      napi_get_value_bool(env, argv[6], &symlink) != napi_ok)
    return napi_throw_type_error(env, NULL, USAGE), NULL;
  napi_value result = NULL;
  int parent = open_parent(dir, path, &name);
  if (parent < 0) {
    note(env, &result, "metadata", errno);
    return result;
  }
  struct timespec ts[2] = {from_ns(mtime), from_ns(mtime)};
  if (fchownat(parent, name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) note(env, &result, "owner", errno);
  /* After the owner, which clears setuid and setgid. glibc >= 2.32 does fchmodat's AT_SYMLINK_NOFOLLOW through O_PATH. */
  if ((!symlink && fchmodat(parent, name, mode & 07777, AT_SYMLINK_NOFOLLOW) != 0) || utimensat(parent, name, ts, AT_SYMLINK_NOFOLLOW) != 0)
    note(env, &result, "metadata", errno);
  close_opened(parent, dir);
  if (result == NULL) napi_get_null(env, &result);
  return result;
}
#undef USAGE

/* walkPaths(on: boolean): for tests, the component walk that kernels without openat2() get. */
static napi_value set_walk_paths(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool on = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_bool(env, argv[0], &on) != napi_ok) return napi_throw_type_error(env, NULL, "walkPaths(on: boolean)"), NULL;
  atomic_store(&walk_paths, on);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"finishFile", NULL, finish_file, NULL, NULL, NULL, napi_default, NULL},
    {"open", NULL, open_file, NULL, NULL, NULL, napi_default, NULL},
    {"makeDir", NULL, make_dir, NULL, NULL, NULL, napi_default, NULL},
    {"symlink", NULL, make_symlink, NULL, NULL, NULL, napi_default, NULL},
    {"mknod", NULL, make_node, NULL, NULL, NULL, napi_default, NULL},
    {"link", NULL, make_link, NULL, NULL, NULL, napi_default, NULL},
    {"remove", NULL, remove_path, NULL, NULL, NULL, napi_default, NULL},
    {"setMetadata", NULL, set_metadata, NULL, NULL, NULL, napi_default, NULL},
    {"walkPaths", NULL, set_walk_paths, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
