/*
 * A FUSE filesystem served from JavaScript, over libfuse3's low-level API: read-only (a
 * repository's snapshots), or read-write for the few operations a fixed-size image file needs
 * (write, fsync, setattr, fallocate; nothing can be created, removed or renamed).
 *
 * libfuse's session loop runs on a thread of its own and never waits for JavaScript: each
 * request is handed to the main thread through a thread-safe function, and JavaScript answers
 * it later through the reply functions below (fuse_reply_* may be called from any thread), so
 * many requests (read-ahead, a parallel `find`) are in flight at once. Requests that need no
 * answer from the repository (statfs, extended attributes) are answered here; release and
 * (open|release)dir are left to libfuse, which answers them with success.
 *
 * One mount per process. libfuse's signal handlers are not installed: Node owns signals, and
 * the loop thread blocks them all but WAKE_SIGNAL, which unmount() sends it to end a read of
 * /dev/fuse that no request will end.
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>
#include <node_api.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* The operations JavaScript answers; the numbers are FuseOp in fuse.ts. */
enum op { OP_LOOKUP = 1, OP_GETATTR, OP_READLINK, OP_OPEN, OP_READ, OP_READDIR, OP_FORGET, OP_EXIT, OP_WRITE, OP_FSYNC, OP_SETATTR, OP_FALLOCATE };

struct message {
  enum op op;
  fuse_req_t req;
  fuse_ino_t ino;
  uint64_t a, b, c;
  size_t len;    /* of a name or a write's payload, or the number of (ino, nlookup) pairs of a forget */
  char data[];   /* a name, a write's payload, forget pairs, or a setattr's numbers */
};

static struct fuse_session *session;
/* Mounted read-write (the image file): opens for writing reach JavaScript. */
static int writable;
static pthread_t loop_thread;
static napi_threadsafe_function tsfn;
/* Set once unmount() began: requests still queued are dropped, replies ignored. */
static volatile int closing;
static int loop_result;
static char last_log[512];

#define WAKE_SIGNAL (SIGRTMIN + 5)

static void on_wake(int sig) { (void)sig; }

static void log_to_buffer(enum fuse_log_level level, const char *fmt, va_list ap) {
  if (level > FUSE_LOG_ERR) return;
  vsnprintf(last_log, sizeof last_log, fmt, ap);
  size_t n = strlen(last_log);
  while (n > 0 && last_log[n - 1] == '\n') last_log[--n] = 0;
}

static void post(struct message *m) {
  if (closing || napi_call_threadsafe_function(tsfn, m, napi_tsfn_blocking) != napi_ok) {
    if (m->req) fuse_reply_err(m->req, EIO);
    free(m);
  }
}

static struct message *message(enum op op, fuse_req_t req, fuse_ino_t ino, size_t extra) {
  /* Only the header is cleared: a write's payload (up to 1 MiB) is copied over the rest. */
  struct message *m = malloc(sizeof *m + extra);
  if (!m) {
    if (req) fuse_reply_err(req, ENOMEM);
    return NULL;
  }
  memset(m, 0, sizeof *m);
  m->op = op;
  m->req = req;
  m->ino = ino;
  return m;
}

static void simple(enum op op, fuse_req_t req, fuse_ino_t ino, uint64_t a, uint64_t b) {
  struct message *m = message(op, req, ino, 0);
  if (!m) return;
  m->a = a;
  m->b = b;
  post(m);
}

static void fs_init(void *userdata, struct fuse_conn_info *conn) {
  (void)userdata;
  /* Read-ahead requests in flight at once: the repository answers them concurrently. */
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  conn->want &= ~FUSE_CAP_SPLICE_READ;
  if (writable) {
    /*
     * Writes of up to 1 MiB each (the kernel's default is 128 KiB): fewer round trips to
     * JavaScript. libfuse asks the kernel for the pages this needs (max_pages) itself where the
     * kernel offers it, and its buffer holds 1 MiB. No writeback cache: each write reaches the
     * export before write(2) returns, so fsync means what it says and nothing waits in the kernel.
     */
    conn->max_write = 1024 * 1024;
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    /*
     * Every change passes through this mount, so what the kernel cached stays right; with
     * auto_inval_data each write's new mtime would drop the whole file's cache at the next getattr.
     */
    conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  }
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  size_t len = strlen(name);
  struct message *m = message(OP_LOOKUP, req, parent, len);
  if (!m) return;
  memcpy(m->data, name, len);
  m->len = len;
  post(m);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  fuse_reply_none(req);
  simple(OP_FORGET, NULL, ino, nlookup, 0);
}

static void fs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  fuse_reply_none(req);
  struct message *m = message(OP_FORGET, NULL, 0, count * 2 * sizeof(double));
  if (!m) return;
  double *pairs = (double *)m->data;
  for (size_t i = 0; i < count; i++) {
    pairs[2 * i] = (double)forgets[i].ino;
    pairs[2 * i + 1] = (double)forgets[i].nlookup;
  }
  m->len = count;
  post(m);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)fi;
  simple(OP_GETATTR, req, ino, 0, 0);
}

static void fs_readlink(fuse_req_t req, fuse_ino_t ino) { simple(OP_READLINK, req, ino, 0, 0); }

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  if (!writable && (fi->flags & O_ACCMODE) != O_RDONLY) {
    fuse_reply_err(req, EROFS);
    return;
  }
  simple(OP_OPEN, req, ino, (uint64_t)fi->flags, 0);
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)fi;
  simple(OP_READ, req, ino, (uint64_t)off, size);
}

/* libfuse's buffer is reused once this returns: the payload is copied once, into the message JavaScript gets. */
static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)fi;
  struct message *m = message(OP_WRITE, req, ino, size);
  if (!m) return;
  m->a = (uint64_t)off;
  m->len = size;
  memcpy(m->data, buf, size);
  post(m);
}

static void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  (void)fi;
  simple(OP_FSYNC, req, ino, (uint64_t)datasync, 0);
}

#define SETATTR_NUMBERS 6

static void put_time(double *at, const struct timespec *t, int now) {
  struct timespec ts = *t;
  if (now) clock_gettime(CLOCK_REALTIME, &ts);
  at[0] = (double)ts.tv_sec;
  at[1] = (double)ts.tv_nsec;
}

/* a = what to set (FUSE_SET_ATTR_*, the *_NOW bits resolved into the times), b = size, c = mode, data: atime s/ns, mtime s/ns, uid, gid. */
static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
  (void)fi;
  struct message *m = message(OP_SETATTR, req, ino, SETATTR_NUMBERS * sizeof(double));
  if (!m) return;
  double *numbers = (double *)m->data;
  put_time(numbers, &attr->st_atim, to_set & FUSE_SET_ATTR_ATIME_NOW);
  put_time(numbers + 2, &attr->st_mtim, to_set & FUSE_SET_ATTR_MTIME_NOW);
  numbers[4] = (double)attr->st_uid;
  numbers[5] = (double)attr->st_gid;
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) to_set |= FUSE_SET_ATTR_ATIME;
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) to_set |= FUSE_SET_ATTR_MTIME;
  m->a = (uint64_t)(to_set & ~(FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW));
  m->b = (uint64_t)attr->st_size;
  m->c = (uint64_t)attr->st_mode;
  post(m);
}

static void fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, struct fuse_file_info *fi) {
  (void)fi;
  struct message *m = message(OP_FALLOCATE, req, ino, 0);
  if (!m) return;
  m->a = (uint64_t)offset;
  m->b = (uint64_t)length;
  m->c = (uint64_t)mode;
  post(m);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)fi;
  simple(OP_READDIR, req, ino, (uint64_t)off, size);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino) {
  (void)ino;
  struct statvfs st = {0};
  st.f_bsize = 4096;
  st.f_frsize = 4096;
  st.f_namemax = 255;
  fuse_reply_statfs(req, &st);
}

/* The tree format stores no extended attributes: every file has none. */
static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  (void)ino;
  (void)name;
  (void)size;
  fuse_reply_err(req, ENODATA);
}

static void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  (void)ino;
  if (size == 0) fuse_reply_xattr(req, 0);
  else fuse_reply_buf(req, NULL, 0);
}

static const struct fuse_lowlevel_ops ops = {
  .init = fs_init,
  .lookup = fs_lookup,
  .forget = fs_forget,
  .forget_multi = fs_forget_multi,
  .getattr = fs_getattr,
  .readlink = fs_readlink,
  .open = fs_open,
  .read = fs_read,
  .readdir = fs_readdir,
  .statfs = fs_statfs,
  .getxattr = fs_getxattr,
  .listxattr = fs_listxattr,
  /* Writable mounts only (a fixed-size image file); release and flush (close) stay with libfuse. */
  .write = fs_write,
  .fsync = fs_fsync,
  .setattr = fs_setattr,
  .fallocate = fs_fallocate,
};

static void *run_loop(void *arg) {
  (void)arg;
  sigset_t wake;
  sigemptyset(&wake);
  sigaddset(&wake, WAKE_SIGNAL);
  pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
  loop_result = fuse_session_loop(session);
  /* Ended from outside (fusermount -u, umount): JavaScript learns of it and cleans up. */
  if (!closing) simple(OP_EXIT, NULL, 0, (uint64_t)(loop_result < 0 ? -loop_result : 0), 0);
  return NULL;
}

/* A write's payload lives in its message: freed with the Buffer that shows it. */
static void free_message(napi_env env, void *data, void *hint) {
  struct message *m = hint;
  int64_t ignored;
  (void)data;
  napi_adjust_external_memory(env, -(int64_t)m->len, &ignored);
  free(m);
}

/* Runs on the main thread for each message: calls the JS handler (op, req, ino, a, b, data, c). */
static void call_js(napi_env env, napi_value callback, void *context, void *data) {
  (void)context;
  struct message *m = data;
  if (env == NULL || closing) {
    if (m->req && !closing) fuse_reply_err(m->req, EIO);
    free(m);
    return;
  }
  napi_value argv[7], undefined;
  napi_get_undefined(env, &undefined);
  napi_create_int32(env, m->op, &argv[0]);
  napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)m->req, &argv[1]);
  napi_create_double(env, (double)m->ino, &argv[2]);
  napi_create_double(env, (double)m->a, &argv[3]);
  napi_create_double(env, (double)m->b, &argv[4]);
  napi_create_double(env, (double)m->c, &argv[6]);
  int keep = 0;
  if (m->op == OP_WRITE) {
    int64_t ignored;
    /* Counted as memory V8 should know of, so that garbage collection frees payloads soon enough. */
    napi_adjust_external_memory(env, (int64_t)m->len, &ignored);
    keep = napi_create_external_buffer(env, m->len, m->data, free_message, m, &argv[5]) == napi_ok;
    if (!keep) {
      napi_adjust_external_memory(env, -(int64_t)m->len, &ignored);
      napi_create_buffer_copy(env, m->len, m->data, NULL, &argv[5]);
    }
  } else if (m->op == OP_SETATTR) {
    napi_value ab;
    void *numbers;
    napi_create_arraybuffer(env, SETATTR_NUMBERS * sizeof(double), &numbers, &ab);
    memcpy(numbers, m->data, SETATTR_NUMBERS * sizeof(double));
    napi_create_typedarray(env, napi_float64_array, SETATTR_NUMBERS, ab, 0, &argv[5]);
  } else if (m->op == OP_LOOKUP) {
    napi_create_buffer_copy(env, m->len, m->data, NULL, &argv[5]);
  } else if (m->op == OP_FORGET && m->ino == 0) {
    napi_value ab;
    void *pairs;
    napi_create_arraybuffer(env, m->len * 2 * sizeof(double), &pairs, &ab);
    memcpy(pairs, m->data, m->len * 2 * sizeof(double));
    napi_create_typedarray(env, napi_float64_array, m->len * 2, ab, 0, &argv[5]);
  } else {
    argv[5] = undefined;
  }
  if (!keep) free(m);
  napi_call_function(env, undefined, callback, 7, argv, NULL);
}

static napi_value throw_error(napi_env env, const char *what) {
  char text[700];
  snprintf(text, sizeof text, "%s%s%s", what, last_log[0] ? ": " : "", last_log);
  napi_throw_error(env, NULL, text);
  return NULL;
}

/* mount(mountpoint: string, options: string, handler: Function, writable: boolean): mounts and starts serving. */
static napi_value mount_fs(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char mountpoint[4096], options[1024];
  bool rw = false;
  if (argc < 4 || napi_get_value_string_utf8(env, argv[0], mountpoint, sizeof mountpoint, NULL) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], options, sizeof options, NULL) != napi_ok ||
      napi_get_value_bool(env, argv[3], &rw) != napi_ok) {
    napi_throw_type_error(env, NULL, "mount(mountpoint: string, options: string, handler: Function, writable: boolean)");
    return NULL;
  }
  if (session) return throw_error(env, "a filesystem is already mounted by this process");
  writable = rw;
  /*
   * A mount decodes blob after blob into new buffers of about 1 MiB, which bin/scrate's
   * MALLOC_MMAP_THRESHOLD_ (128 KiB) gives each fresh pages from mmap: a page fault every 4 KiB,
   * most of the system time of a sequential read. The mount keeps them on the heap instead,
   * where freed blobs are reused; its blob cache bounds what that heap holds.
   */
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  last_log[0] = 0;
  fuse_set_log_func(log_to_buffer);
  char *args[] = {"scrate", "-o", options, NULL};
  struct fuse_args fargs = FUSE_ARGS_INIT(3, args);
  /* libfuse copies the operations: a read-only mount's lack the writing ones, which libfuse then answers with ENOSYS. */
  struct fuse_lowlevel_ops chosen = ops;
  if (!writable) {
    chosen.write = NULL;
    chosen.fsync = NULL;
    chosen.setattr = NULL;
    chosen.fallocate = NULL;
  }
  session = fuse_session_new(&fargs, &chosen, sizeof chosen, NULL);
  if (!session) return throw_error(env, "cannot start a FUSE session");
  if (fuse_session_mount(session, mountpoint) != 0) {
    fuse_session_destroy(session);
    session = NULL;
    return throw_error(env, "cannot mount");
  }
  napi_value name;
  napi_create_string_utf8(env, "scrate-fuse", NAPI_AUTO_LENGTH, &name);
  napi_create_threadsafe_function(env, argv[2], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &tsfn);
  closing = 0;

  struct sigaction sa = {0};
  sa.sa_handler = on_wake; /* no SA_RESTART: the loop's read returns EINTR */
  sigemptyset(&sa.sa_mask);
  sigaction(WAKE_SIGNAL, &sa, NULL);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int err = pthread_create(&loop_thread, NULL, run_loop, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err) {
    fuse_session_unmount(session);
    fuse_session_destroy(session);
    session = NULL;
    napi_release_threadsafe_function(tsfn, napi_tsfn_abort);
    return throw_error(env, "cannot start the FUSE thread");
  }
  return NULL;
}

/*
 * unmount(): ends the loop (if it still runs), then unmounts lazily, so that a busy mountpoint
 * (a shell in it) never keeps a stale mount, and closes /dev/fuse, which fails whatever is still
 * waiting for an answer. Idempotent.
 */
static napi_value unmount_fs(napi_env env, napi_callback_info info) {
  (void)info;
  if (!session) return NULL;
  closing = 1;
  fuse_session_exit(session);
  /* The loop checks for its end between reads: wake its read until it has seen it. */
  for (;;) {
    pthread_kill(loop_thread, WAKE_SIGNAL);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += 20 * 1000 * 1000;
    if (deadline.tv_nsec >= 1000000000) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000;
    }
    if (pthread_timedjoin_np(loop_thread, NULL, &deadline) == 0) break;
  }
  fuse_session_unmount(session);
  fuse_session_destroy(session);
  session = NULL;
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  return NULL;
}

static fuse_req_t get_req(napi_env env, napi_value v) {
  uint64_t p = 0;
  bool lossless;
  napi_get_value_bigint_uint64(env, v, &p, &lossless);
  return (fuse_req_t)(uintptr_t)p;
}

static double get_double(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d;
}

/* The attribute layout of fuse.ts (Attr): ino, mode, nlink, uid, gid, rdev, size, blocks, mtime s/ns, ctime s/ns[, atime s/ns, else atime = mtime]. */
static int get_attr(napi_env env, napi_value v, struct stat *st) {
  void *data;
  size_t length;
  napi_typedarray_type type;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok || type != napi_float64_array || length < 12) return -1;
  const double *a = data;
  memset(st, 0, sizeof *st);
  st->st_ino = (ino_t)a[0];
  st->st_mode = (mode_t)a[1];
  st->st_nlink = (nlink_t)a[2];
  st->st_uid = (uid_t)a[3];
  st->st_gid = (gid_t)a[4];
  st->st_rdev = (dev_t)a[5];
  st->st_size = (off_t)a[6];
  st->st_blocks = (blkcnt_t)a[7];
  st->st_blksize = 128 * 1024;
  st->st_mtim.tv_sec = (time_t)a[8];
  st->st_mtim.tv_nsec = (long)a[9];
  st->st_atim = st->st_mtim;
  if (length >= 14) {
    st->st_atim.tv_sec = (time_t)a[12];
    st->st_atim.tv_nsec = (long)a[13];
  }
  st->st_ctim.tv_sec = (time_t)a[10];
  st->st_ctim.tv_nsec = (long)a[11];
  return 0;
}

#define ARGS(n)                                                  \
  size_t argc = n;                                               \
  napi_value argv[n];                                            \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);          \
  if (argc < n || closing) return NULL;                          \
  fuse_req_t req = get_req(env, argv[0]);

/* replyEntry(req, attr: Float64Array, entryTimeout, attrTimeout) */
static napi_value reply_entry(napi_env env, napi_callback_info info) {
  ARGS(4)
  struct fuse_entry_param e = {0};
  if (get_attr(env, argv[1], &e.attr)) {
    fuse_reply_err(req, EIO);
    return NULL;
  }
  e.ino = e.attr.st_ino;
  e.generation = 1;
  e.entry_timeout = get_double(env, argv[2]);
  e.attr_timeout = get_double(env, argv[3]);
  fuse_reply_entry(req, &e);
  return NULL;
}

/* replyAttr(req, attr: Float64Array, timeout) */
static napi_value reply_attr(napi_env env, napi_callback_info info) {
  ARGS(3)
  struct stat st;
  if (get_attr(env, argv[1], &st)) fuse_reply_err(req, EIO);
  else fuse_reply_attr(req, &st, get_double(env, argv[2]));
  return NULL;
}

/* replyErr(req, errno) */
static napi_value reply_err(napi_env env, napi_callback_info info) {
  ARGS(2)
  fuse_reply_err(req, (int)get_double(env, argv[1]));
  return NULL;
}

/* replyWrite(req, count) */
static napi_value reply_write(napi_env env, napi_callback_info info) {
  ARGS(2)
  fuse_reply_write(req, (size_t)get_double(env, argv[1]));
  return NULL;
}

/* replyOpen(req, keepCache) */
static napi_value reply_open(napi_env env, napi_callback_info info) {
  ARGS(2)
  struct fuse_file_info fi = {0};
  bool keep = false;
  napi_get_value_bool(env, argv[1], &keep);
  fi.keep_cache = keep;
  fuse_reply_open(req, &fi);
  return NULL;
}

/* A Buffer argument; a bad one fails the request with EIO. */
static int get_bytes(napi_env env, napi_value v, fuse_req_t req, void **data, size_t *length) {
  if (napi_get_buffer_info(env, v, data, length) == napi_ok) return 0;
  fuse_reply_err(req, EIO);
  return -1;
}

/* replyData(req, pieces: Buffer[]): a read's bytes, the pieces in order (slices of blobs: never copied into one) */
static napi_value reply_data(napi_env env, napi_callback_info info) {
  ARGS(2)
  uint32_t count = 0;
  if (napi_get_array_length(env, argv[1], &count) != napi_ok || count > 64) {
    fuse_reply_err(req, EIO);
    return NULL;
  }
  struct iovec iov[64];
  for (uint32_t i = 0; i < count; i++) {
    napi_value piece;
    napi_get_element(env, argv[1], i, &piece);
    if (get_bytes(env, piece, req, &iov[i].iov_base, &iov[i].iov_len)) return NULL;
  }
  fuse_reply_iov(req, iov, (int)count);
  return NULL;
}

/* replyLink(req, target: Buffer) */
static napi_value reply_link(napi_env env, napi_callback_info info) {
  ARGS(2)
  void *data;
  size_t length;
  if (get_bytes(env, argv[1], req, &data, &length)) return NULL;
  char *target = malloc(length + 1);
  if (!target) {
    fuse_reply_err(req, ENOMEM);
    return NULL;
  }
  memcpy(target, data, length);
  target[length] = 0;
  fuse_reply_readlink(req, target);
  free(target);
  return NULL;
}

/*
 * replyDir(req, size, offset, names: Buffer, ends: Uint32Array, inos: Float64Array, modes: Uint32Array):
 * the entries from `offset` on (entry i has offset offset+i+1), as many as fit in `size` bytes.
 */
static napi_value reply_dir(napi_env env, napi_callback_info info) {
  ARGS(7)
  size_t size = (size_t)get_double(env, argv[1]);
  double first = get_double(env, argv[2]);
  char *names;
  size_t names_len, count, n2, n3;
  void *ends_p, *inos_p, *modes_p;
  napi_typedarray_type t;
  if (napi_get_buffer_info(env, argv[3], (void **)&names, &names_len) != napi_ok ||
      napi_get_typedarray_info(env, argv[4], &t, &count, &ends_p, NULL, NULL) != napi_ok || t != napi_uint32_array ||
      napi_get_typedarray_info(env, argv[5], &t, &n2, &inos_p, NULL, NULL) != napi_ok || t != napi_float64_array ||
      napi_get_typedarray_info(env, argv[6], &t, &n3, &modes_p, NULL, NULL) != napi_ok || t != napi_uint32_array ||
      n2 != count || n3 != count) {
    fuse_reply_err(req, EIO);
    return NULL;
  }
  const uint32_t *ends = ends_p, *modes = modes_p;
  const double *inos = inos_p;
  char *buf = malloc(size);
  if (!buf) {
    fuse_reply_err(req, ENOMEM);
    return NULL;
  }
  size_t used = 0, start = 0;
  char name[256];
  for (size_t i = 0; i < count; i++) {
    size_t end = ends[i], len = end - start;
    if (end > names_len || end < start) break;
    start = end;
    if (len >= sizeof name) continue; /* no name of Linux is that long: not one to show */
    memcpy(name, names + end - len, len);
    name[len] = 0;
    struct stat st = {0};
    st.st_ino = (ino_t)inos[i];
    st.st_mode = modes[i];
    size_t need = fuse_add_direntry(req, buf + used, size - used, name, &st, (off_t)(first + i + 1));
    if (need > size - used) break;
    used += need;
  }
  fuse_reply_buf(req, buf, used);
  free(buf);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"mount", NULL, mount_fs, NULL, NULL, NULL, napi_default, NULL},
    {"unmount", NULL, unmount_fs, NULL, NULL, NULL, napi_default, NULL},
    {"replyEntry", NULL, reply_entry, NULL, NULL, NULL, napi_default, NULL},
    {"replyAttr", NULL, reply_attr, NULL, NULL, NULL, napi_default, NULL},
    {"replyErr", NULL, reply_err, NULL, NULL, NULL, napi_default, NULL},
    {"replyOpen", NULL, reply_open, NULL, NULL, NULL, napi_default, NULL},
    {"replyWrite", NULL, reply_write, NULL, NULL, NULL, napi_default, NULL},
    {"replyData", NULL, reply_data, NULL, NULL, NULL, napi_default, NULL},
    {"replyLink", NULL, reply_link, NULL, NULL, NULL, napi_default, NULL},
    {"replyDir", NULL, reply_dir, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
