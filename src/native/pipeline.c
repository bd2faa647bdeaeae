/*
 * A backup's CPU work, run on libuv's thread pool: the main thread walks, deduplicates and
 * uploads, and no worker isolate is needed (two of them cost ~25 MiB of V8 heap and malloc
 * arenas of their own, more than all data in flight). Each call returns a promise:
 *   hashFiles  a batch of small files read whole into a region of the data ring, cut (FastCDC)
 *              and named (keyed BLAKE3) there;
 *   hashChunk  one chunk named;
 *   sealBlobs  blobs compressed (zstd) and sealed (AES-256-GCM) one after another into a pack,
 *              through a Lane (compression and cipher contexts): one call at a time per lane;
 *              for a staged pack also written to its file and hashed there (a PackSink).
 * The caller keeps every buffer it passes alive and untouched until the promise settles.
 * compressInto/decompress are the same zstd for the main thread's own objects (trees, snapshots).
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
/* ZSTD_estimateCCtxSize, ZSTD_initStaticCCtx: exported by the shared libzstd too. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include "blob-crypto.h"
#include "gear-search.h"

#define PATH_BUF 4096
#define ID_BYTES 32
#define KEY_BYTES 32

/* ---------- arguments ---------- */

static int get_typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len) {
  napi_typedarray_type type;
  return napi_get_typedarray_info(env, v, &type, len, data, NULL, NULL) != napi_ok || type != want ? -1 : 0;
}

static int get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  return get_typed(env, v, napi_uint8_array, (void **)data, len);
}

/* A promise and the arguments it keeps alive until it settles. */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep;
  const char *error;
} Job;

static napi_value start_job(napi_env env, Job *job, napi_value *argv, size_t argc, const char *name, napi_async_execute_callback execute, napi_async_complete_callback complete) {
  napi_value promise, args, resource;
  napi_create_array_with_length(env, argc, &args);
  for (size_t i = 0; i < argc; i++) napi_set_element(env, args, (uint32_t)i, argv[i]);
  napi_create_reference(env, args, 1, &job->keep);
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  napi_create_async_work(env, NULL, resource, execute, complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

/* Settles the promise (rejected if the job set an error) and frees what it kept. */
static void finish_job(napi_env env, Job *job, napi_value value) {
  if (job->error) {
    napi_value msg, err;
    napi_create_string_utf8(env, job->error, NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_reject_deferred(env, job->deferred, err);
  } else {
    napi_resolve_deferred(env, job->deferred, value);
  }
  napi_delete_reference(env, job->keep);
  napi_delete_async_work(env, job->work);
}

static napi_value undefined(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

/*
 * Pool threads run as SCHED_BATCH: each call wakes an idle one, and a woken thread that
 * preempted the main thread on its core left the main thread (which walks and feeds the pool,
 * the backup's critical path) stalled in the call for up to a time slice: 1.5 s of the kernel
 * tree's first backup. A batch thread takes a free core or waits its turn.
 */
static _Thread_local bool batch_thread;

static void as_batch_thread(void) {
  if (batch_thread) return;
  struct sched_param none = {0};
  sched_setscheduler(0, SCHED_BATCH, &none);
  batch_thread = true;
}

/* ---------- FastCDC ---------- */

typedef struct {
  const uint64_t *table;
  uint32_t min, avg, max;
} Chunker;

/* FastCDC.cut (src/chunker/fastcdc.ts) for the chunk at the start of b[0, remaining). */
static uint32_t cut(const Chunker *c, const uint8_t *b, size_t remaining) {
  if (remaining <= c->min) return (uint32_t)remaining;
  uint32_t window = remaining > c->max ? c->max : (uint32_t)remaining;
  uint32_t center = window < c->avg ? window : c->avg;
  int64_t p = gear_search(c->table, b, c->min & ~1u, center & ~1u, window & ~1u);
  return p < 0 ? window : (uint32_t)p;
}

static int get_chunker(napi_env env, napi_value *argv, Chunker *c) {
  void *table;
  size_t words;
  if (get_typed(env, argv[0], napi_biguint64_array, &table, &words) || words != GEAR_TABLE_WORDS ||
      napi_get_value_uint32(env, argv[1], &c->min) != napi_ok || napi_get_value_uint32(env, argv[2], &c->avg) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &c->max) != napi_ok || !(c->min < c->avg && c->avg < c->max))
    return -1;
  c->table = table;
  return 0;
}

/* ---------- hashFiles ---------- */

enum { READ_OK = 0, READ_GREW = 1, READ_OPEN_FAILED = 2, READ_FAILED = 3 };
/* Per file: outcome, errno, bytes read, changed while read (0/1), chunks. */
#define READ_SLOTS 5

typedef struct {
  Job job;
  Chunker chunker;
  const uint8_t *key;
  const char *paths;
  size_t paths_len, n, into_len;
  const uint32_t *ends;
  const double *sizes;
  const int64_t *mtimes;
  uint8_t *into;
  double *results;
  /* Out: chunk lengths and IDs, in file order; a file that grew has its bytes in grown[i]. */
  uint32_t *lengths;
  uint8_t *ids;
  size_t chunks, capacity;
  uint8_t **grown;
} HashFiles;

/* O_NOATIME is refused for files we do not own unless we are root: then without it. */
static int open_no_atime(const char *path) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC);
  if (fd < 0 && errno == EPERM) fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  return fd;
}

/* Reads up to `room` bytes from the current position; the count, or -1 with errno set. */
static ssize_t read_up_to(int fd, uint8_t *into, size_t room) {
  size_t done = 0;
  while (done < room) {
    ssize_t n = read(fd, into + done, room - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    done += (size_t)n;
  }
  return (ssize_t)done;
}

/* The rest of a file that grew, after the `have` bytes already read: a buffer of its own (rare). */
static uint8_t *read_grown(int fd, const uint8_t *have, size_t have_len, size_t *len) {
  size_t cap = have_len * 2 < 65536 ? 65536 : have_len * 2;
  uint8_t *buf = malloc(cap);
  if (!buf) return errno = ENOMEM, NULL;
  memcpy(buf, have, have_len);
  *len = have_len;
  for (;;) {
    if (*len == cap) {
      uint8_t *bigger = realloc(buf, cap *= 2);
      if (!bigger) return free(buf), errno = ENOMEM, NULL;
      buf = bigger;
    }
    ssize_t n = read_up_to(fd, buf + *len, cap - *len);
    if (n < 0) return free(buf), NULL;
    if (n == 0) return buf;
    *len += (size_t)n;
  }
}

/* Cuts data into chunks and names each; false when out of memory. */
static bool hash_chunks(HashFiles *h, const uint8_t *data, size_t len, double *chunks) {
  for (size_t at = 0; at < len;) {
    if (h->chunks == h->capacity) {
      size_t cap = h->capacity ? h->capacity * 2 : 256;
      uint32_t *lengths = realloc(h->lengths, cap * sizeof *lengths);
      if (lengths) h->lengths = lengths;
      uint8_t *ids = lengths ? realloc(h->ids, cap * ID_BYTES) : NULL;
      if (!ids) return false;
      h->ids = ids;
      h->capacity = cap;
    }
    uint32_t length = cut(&h->chunker, data + at, len - at);
    blob_id(h->key, data + at, length, h->ids + h->chunks * ID_BYTES);
    h->lengths[h->chunks++] = length;
    at += length;
    (*chunks)++;
  }
  return true;
}

/*
 * Each file is read whole into `into`, one after the other: a file of the size the walk saw
 * takes that many bytes. It is read for one byte more than its size, which tells a file that
 * grew: it is read to its end into a buffer of its own (READ_GREW). A file changed while read
 * when its size or mtime after reading differ from the walk's or it ended early.
 */
static void hash_files_execute(napi_env env, void *data) {
  as_batch_thread();
  HashFiles *h = data;
  size_t used = 0, start = 0;
  for (size_t i = 0; i < h->n; start = h->ends[i], i++) {
    double *r = h->results + i * READ_SLOTS;
    r[0] = READ_OK; r[1] = 0; r[2] = 0; r[3] = 0; r[4] = 0;
    size_t size = (size_t)h->sizes[i];
    char path[PATH_BUF];
    if (h->ends[i] < start || h->ends[i] > h->paths_len || h->ends[i] - start >= PATH_BUF) {
      r[0] = READ_OPEN_FAILED; r[1] = ENAMETOOLONG;
      continue;
    }
    if (used + size + 1 > h->into_len) {
      h->job.error = "hashFiles: no room for the files' sizes";
      return;
    }
    memcpy(path, h->paths + start, h->ends[i] - start);
    path[h->ends[i] - start] = 0;
    int fd = open_no_atime(path);
    if (fd < 0) {
      r[0] = READ_OPEN_FAILED; r[1] = errno;
      continue;
    }
    uint8_t *bytes = h->into + used;
    size_t len = 0;
    ssize_t got = read_up_to(fd, bytes, size + 1);
    struct stat st;
    if (got > (ssize_t)size) {
      bytes = h->grown[i] = read_grown(fd, bytes, (size_t)got, &len);
      if (!bytes) got = -1;
    }
    if (got < 0 || fstat(fd, &st) != 0) {
      r[0] = READ_FAILED; r[1] = errno;
      free(h->grown[i]);
      h->grown[i] = NULL;
      close(fd);
      continue;
    }
    close(fd);
    if (h->grown[i]) {
      r[0] = READ_GREW; r[3] = 1;
    } else {
      len = (size_t)got;
      used += len;
      int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
      r[3] = mtime != h->mtimes[i] || (size_t)st.st_size != size || len != size;
    }
    r[2] = (double)len;
    if (!hash_chunks(h, bytes, len, &r[4])) {
      h->job.error = "hashFiles: out of memory";
      return;
    }
  }
}

static void free_grown(napi_env env, void *data, void *hint) {
  free(data);
}

static void hash_files_complete(napi_env env, napi_status status, void *data) {
  HashFiles *h = data;
  napi_value result = NULL;
  if (!h->job.error) {
    napi_value lengths_ab, lengths, ids, grown;
    void *p;
    napi_create_arraybuffer(env, h->chunks * sizeof(uint32_t), &p, &lengths_ab);
    if (h->chunks) memcpy(p, h->lengths, h->chunks * sizeof(uint32_t));
    napi_create_typedarray(env, napi_uint32_array, h->chunks, lengths_ab, 0, &lengths);
    napi_create_buffer_copy(env, h->chunks * ID_BYTES, h->chunks ? h->ids : (const void *)"", NULL, &ids);
    napi_create_array_with_length(env, h->n, &grown);
    for (size_t i = 0; i < h->n; i++) {
      if (!h->grown[i]) continue;
      napi_value buf;
      napi_create_external_buffer(env, (size_t)h->results[i * READ_SLOTS + 2], h->grown[i], free_grown, NULL, &buf);
      napi_set_element(env, grown, (uint32_t)i, buf);
      h->grown[i] = NULL;
    }
    napi_create_object(env, &result);
    napi_set_named_property(env, result, "lengths", lengths);
    napi_set_named_property(env, result, "ids", ids);
    napi_set_named_property(env, result, "grown", grown);
  }
  finish_job(env, &h->job, result);
  for (size_t i = 0; i < h->n; i++) free(h->grown[i]);
  free(h->grown);
  free(h->lengths);
  free(h->ids);
  free(h);
}

/*
 * hashFiles(table, min, avg, max, key, paths, ends, sizes, mtimes, into, results)
 *   -> Promise<{ lengths: Uint32Array, ids: Buffer, grown: (Buffer | undefined)[] }>
 * table/min/avg/max: the chunker (FastCDC.table); paths concatenated, file i's ending at
 * ends[i]; into: room for every size plus one byte each; results: READ_SLOTS per file.
 */
static napi_value hash_files(napi_env env, napi_callback_info info) {
  size_t argc = 11, n_sizes, n_mtimes, n_results, key_len;
  napi_value argv[11];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  HashFiles *h = calloc(1, sizeof *h);
  if (!h) return napi_throw_error(env, NULL, "hashFiles: out of memory"), NULL;
  if (argc != 11 || get_chunker(env, argv, &h->chunker) || get_bytes(env, argv[4], (uint8_t **)&h->key, &key_len) || key_len != KEY_BYTES ||
      get_bytes(env, argv[5], (uint8_t **)&h->paths, &h->paths_len) || get_typed(env, argv[6], napi_uint32_array, (void **)&h->ends, &h->n) ||
      get_typed(env, argv[7], napi_float64_array, (void **)&h->sizes, &n_sizes) || get_typed(env, argv[8], napi_bigint64_array, (void **)&h->mtimes, &n_mtimes) ||
      get_bytes(env, argv[9], &h->into, &h->into_len) || get_typed(env, argv[10], napi_float64_array, (void **)&h->results, &n_results) ||
      n_sizes != h->n || n_mtimes != h->n || n_results != h->n * READ_SLOTS || !(h->grown = calloc(h->n + 1, sizeof *h->grown))) {
    free(h);
    napi_throw_type_error(env, NULL, "hashFiles(table, min, avg, max, key, paths, ends, sizes, mtimes, into, results)");
    return NULL;
  }
  return start_job(env, &h->job, argv, argc, "scrate.hashFiles", hash_files_execute, hash_files_complete);
}

/* ---------- hashChunk ---------- */

typedef struct {
  Job job;
  const uint8_t *key, *data;
  size_t len;
  uint8_t *out;
} HashChunk;

static void hash_chunk_execute(napi_env env, void *data) {
  as_batch_thread();
  HashChunk *h = data;
  blob_id(h->key, h->data, h->len, h->out);
}

static void hash_chunk_complete(napi_env env, napi_status status, void *data) {
  finish_job(env, data, undefined(env));
  free(data);
}

/* hashChunk(key, data, out: 32 bytes) -> Promise<void>: the blob ID of data into out. */
static napi_value hash_chunk(napi_env env, napi_callback_info info) {
  size_t argc = 3, key_len, out_len;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  HashChunk *h = calloc(1, sizeof *h);
  if (!h) return napi_throw_error(env, NULL, "hashChunk: out of memory"), NULL;
  if (argc != 3 || get_bytes(env, argv[0], (uint8_t **)&h->key, &key_len) || key_len != KEY_BYTES ||
      get_bytes(env, argv[1], (uint8_t **)&h->data, &h->len) || get_bytes(env, argv[2], &h->out, &out_len) || out_len != ID_BYTES) {
    free(h);
    napi_throw_type_error(env, NULL, "hashChunk(key: 32 bytes, data, out: 32 bytes)");
    return NULL;
  }
  return start_job(env, &h->job, argv, argc, "scrate.hashChunk", hash_chunk_execute, hash_chunk_complete);
}

/* ---------- a staged pack's file ---------- */

/*
 * Bytes of a pack are written to its file and hashed (the pack's name is their SHA-256) where
 * they are sealed: on the pool for blobs (sealBlobs), on the main thread for the rest (pack
 * headers, trees). Written and hashed on the main thread in 1 MiB windows, a backup of the
 * kernel tree's packs took 0.33 s of that thread (6%), half of it SHA-256. The file descriptor
 * is the caller's, open until no call uses it.
 */
typedef struct {
  int fd;
  EVP_MD_CTX *sha;
} PackSink;

static const napi_type_tag SINK_TAG = {0x7363726174652e50ULL, 0x61636b53696e6b31ULL};

static void free_sink(napi_env env, void *data, void *hint) {
  PackSink *k = data;
  EVP_MD_CTX_free(k->sha);
  free(k);
}

static int get_sink(napi_env env, napi_value v, PackSink **k) {
  bool tagged = false;
  return napi_check_object_type_tag(env, v, &SINK_TAG, &tagged) != napi_ok || !tagged || napi_get_value_external(env, v, (void **)k) != napi_ok ? -1 : 0;
}

/* Hashes bytes (the pack's next ones) and writes them at offset; an error into message. */
static bool sink_write(PackSink *k, const uint8_t *bytes, size_t len, uint64_t offset, char *message, size_t message_len) {
  if (!EVP_DigestUpdate(k->sha, bytes, len)) return snprintf(message, message_len, "SHA-256 failed"), false;
  for (size_t done = 0; done < len;) {
    ssize_t n = pwrite(k->fd, bytes + done, len - done, (off_t)(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      char reason[128];
      snprintf(message, message_len, "cannot write the staged pack: %s", strerror_r(errno, reason, sizeof reason));
      return false;
    }
    done += (size_t)n;
  }
  return true;
}

/* newPackSink(fd) -> a sink writing to fd. */
static napi_value new_pack_sink(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc != 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) return napi_throw_type_error(env, NULL, "newPackSink(fd)"), NULL;
  PackSink *k = calloc(1, sizeof *k);
  if (!k || !(k->sha = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(k->sha, EVP_sha256(), NULL)) {
    if (k) EVP_MD_CTX_free(k->sha);
    free(k);
    return napi_throw_error(env, NULL, "cannot set up SHA-256"), NULL;
  }
  k->fd = fd;
  napi_create_external(env, k, free_sink, NULL, &result);
  napi_type_tag_object(env, result, &SINK_TAG);
  return result;
}

/* packSinkWrite(sink, bytes, offset): as sealBlobs writes its blobs, on this thread. */
static napi_value pack_sink_write(napi_env env, napi_callback_info info) {
  size_t argc = 3, len;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  PackSink *k;
  uint8_t *bytes;
  int64_t offset;
  if (argc != 3 || get_sink(env, argv[0], &k) || get_bytes(env, argv[1], &bytes, &len) || napi_get_value_int64(env, argv[2], &offset) != napi_ok || offset < 0)
    return napi_throw_type_error(env, NULL, "packSinkWrite(sink, bytes, offset)"), NULL;
  char message[256];
  if (!sink_write(k, bytes, len, (uint64_t)offset, message, sizeof message)) return napi_throw_error(env, NULL, message), NULL;
  return undefined(env);
}

/* packSinkDigest(sink) -> the SHA-256 of every byte written, in order; the sink takes no more. */
static napi_value pack_sink_digest(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  PackSink *k;
  uint8_t id[ID_BYTES];
  unsigned int n = 0;
  if (argc != 1 || get_sink(env, argv[0], &k)) return napi_throw_type_error(env, NULL, "packSinkDigest(sink)"), NULL;
  if (!EVP_DigestFinal_ex(k->sha, id, &n) || n != ID_BYTES) return napi_throw_error(env, NULL, "SHA-256 failed"), NULL;
  napi_create_buffer_copy(env, ID_BYTES, id, NULL, &result);
  return result;
}

/* ---------- lanes: compression and sealing ---------- */

#define SAMPLE_BYTES (8 * 1024)

typedef struct {
  int level;
  /*
   * In a workspace of its own, sized once for the level's largest parameters: a context that
   * allocates its own frees its tables after 128 calls at 3× what they need and allocates
   * them again (mmap'd, MALLOC_MMAP_THRESHOLD_ in bin/scrate) at the next large blob; the page
   * faults and table clearing were ~3% of a backup of the kernel tree, and level 3 ran ~15%
   * faster on its blobs without them.
   */
  ZSTD_CCtx *cctx;
  void *cctx_space;
  /* Where looks_incompressible compresses its samples. */
  uint8_t sample[ZSTD_COMPRESSBOUND(SAMPLE_BYTES)];
  EVP_CIPHER *gcm;
  EVP_CIPHER_CTX *ctx;
  /*
   * Calls in the order made (tickets), each sealing after the one before: a call may be made
   * while the one before is still sealing, and its blobs go where that one's end, known only
   * then. `issued` and `settled` (calls whose promise is settled) are the main thread's; the
   * rest is under `m`.
   */
  uint64_t issued, settled;
  pthread_mutex_t m;
  pthread_cond_t turn;
  uint64_t done;
  bool failed;
  /* Where the last call ended: its buffer, the position in it, and the pack offset there. */
  uint8_t *end_out;
  size_t end_at, end_len;
  uint64_t end_offset;
} Lane;

/* Blobs from this size on are sampled before a full attempt (see looks_incompressible). */
#define SAMPLED_MIN (256 * 1024)
/* A sample that compresses below this fraction shows the blob is worth compressing. */
#define SAMPLE_SHRINK 0.97

/* zstd of data into dst: its length, or 0 when it does not fit in cap (or on error). */
static size_t zstd_into(Lane *l, const uint8_t *data, size_t len, uint8_t *dst, size_t cap) {
  size_t n = ZSTD_compress2(l->cctx, dst, cap, data, len);
  return ZSTD_isError(n) ? 0 : n;
}

/*
 * Large blobs of media, archives or encrypted data are not worth a full attempt (≈ 0.9 ms per
 * MiB at level 3): three small samples that all fail to shrink stand for the whole.
 */
static bool looks_incompressible(Lane *l, const uint8_t *data, size_t len) {
  if (len < SAMPLED_MIN) return false;
  size_t last = len - SAMPLE_BYTES, at[3] = {0, last / 2, last};
  for (int i = 0; i < 3; i++) {
    size_t n = zstd_into(l, data + at[i], SAMPLE_BYTES, l->sample, sizeof l->sample);
    if (n && n < SAMPLE_BYTES * SAMPLE_SHRINK) return false;
  }
  return true;
}

/*
 * data compressed into dst (room bytes) when that makes it smaller: the compressed length,
 * or 0 when it is to be stored as it is. Straight into its place (a blob's in the pack): a
 * scratch buffer was touched as deep as the largest blob.
 */
static size_t lane_compress(Lane *l, const uint8_t *data, size_t len, uint8_t *dst, size_t room) {
  if (l->level <= 0 || len < 2 || looks_incompressible(l, data, len)) return 0;
  return zstd_into(l, data, len, dst, room < len - 1 ? room : len - 1);
}

static void free_lane(napi_env env, void *data, void *hint) {
  Lane *l = data;
  free(l->cctx_space);
  EVP_CIPHER_CTX_free(l->ctx);
  EVP_CIPHER_free(l->gcm);
  pthread_mutex_destroy(&l->m);
  pthread_cond_destroy(&l->turn);
  free(l);
}

/* newLane(level) -> a lane: zstd at `level` (0: off), AES-256-GCM. */
static napi_value new_lane(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t level;
  if (argc != 1 || napi_get_value_int32(env, argv[0], &level) != napi_ok) return napi_throw_type_error(env, NULL, "newLane(level)"), NULL;
  Lane *l = calloc(1, sizeof *l);
  if (l) pthread_mutex_init(&l->m, NULL), pthread_cond_init(&l->turn, NULL);
  size_t space = ZSTD_estimateCCtxSize(level > 0 ? level : 1);
  if (l) l->cctx_space = malloc(space);
  if (!l || !l->cctx_space || !(l->cctx = ZSTD_initStaticCCtx(l->cctx_space, space)) || !(l->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL)) || !(l->ctx = EVP_CIPHER_CTX_new())) {
    if (l) free_lane(env, l, NULL);
    return napi_throw_error(env, NULL, "cannot set up zstd and AES-256-GCM"), NULL;
  }
  l->level = level;
  if (level > 0 &&
      (ZSTD_isError(ZSTD_CCtx_setParameter(l->cctx, ZSTD_c_compressionLevel, level)) ||
       ZSTD_isError(ZSTD_CCtx_setParameter(l->cctx, ZSTD_c_contentSizeFlag, 1)) ||
       ZSTD_isError(ZSTD_CCtx_setParameter(l->cctx, ZSTD_c_checksumFlag, 0)))) {
    free_lane(env, l, NULL);
    return napi_throw_range_error(env, NULL, "zstd refused the compression level"), NULL;
  }
  napi_create_external(env, l, free_lane, NULL, &result);
  return result;
}

static int get_lane(napi_env env, napi_value v, Lane **l) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, (void **)l) != napi_ok ? -1 : 0;
}

typedef struct {
  Job job;
  Lane *lane;
  uint64_t ticket;
  /* Placed where the lane's call before it ended (its at and offset known only then). */
  bool chained;
  const uint8_t *key;
  size_t n;
  const uint8_t **blobs;
  size_t *lens;
  uint8_t *out;
  size_t out_len, at, need;
  uint64_t offset;
  uint32_t *fields;
  size_t written;
  /* Where the sealed bytes go as well, or NULL. */
  PackSink *sink;
  char message[256];
} SealBlobs;

static const char *seal_each(SealBlobs *s) {
  Lane *l = s->lane;
  uint8_t *base = s->out + s->at;
  for (size_t i = 0; i < s->n; i++) {
    uint8_t *dst = base + s->written;
    size_t packed = lane_compress(l, s->blobs[i], s->lens[i], dst, s->lens[i]);
    const uint8_t *stored = packed ? dst : s->blobs[i];
    size_t stored_len = packed ? packed : s->lens[i];
    uint8_t nonce[12] = {0};
    uint64_t counter = s->offset + s->written;
    for (int b = 0; b < 6; b++) nonce[11 - b] = (uint8_t)(counter >> (8 * b));
    /* A compressed blob in place: GCM (a stream cipher) may write over what it reads. */
    if (!gcm_seal_into(l->ctx, l->gcm, s->key, nonce, NULL, 0, stored, stored_len, dst)) return "AES-256-GCM encryption failed";
    s->fields[2 * i] = (uint32_t)(stored_len + TAG_BYTES);
    s->fields[2 * i + 1] = packed != 0;
    s->written += stored_len + TAG_BYTES;
  }
  return NULL;
}

/*
 * A call waits for the lane's call before it (a pool thread then waits, not a core): the next
 * call is ready to go the moment the one before ends, where a call made only once the one
 * before had come back through the event loop left the lane idle for that trip (0.5 ms at
 * the median, 3 ms at the 90th percentile, against 1.3 ms of sealing a call on the kernel
 * tree).
 */
static void seal_blobs_execute(napi_env env, void *data) {
  as_batch_thread();
  SealBlobs *s = data;
  Lane *l = s->lane;
  pthread_mutex_lock(&l->m);
  while (l->done != s->ticket) pthread_cond_wait(&l->turn, &l->m);
  const char *error = l->failed ? "sealBlobs: a call before it on the lane failed" : NULL;
  if (!error && s->chained) {
    if (l->end_out != s->out || l->end_len != s->out_len) error = "sealBlobs: a chained call must go into the buffer of the call before it";
    s->at = l->end_at;
    s->offset = l->end_offset;
  }
  pthread_mutex_unlock(&l->m);
  if (!error && (s->at > s->out_len || s->need > s->out_len - s->at)) error = "sealBlobs: no room in the pack for the blobs";
  if (!error) error = seal_each(s);
  /* In the lane's order: the pack's hash takes its bytes front to back. */
  if (!error && s->sink && !sink_write(s->sink, s->out + s->at, s->written, s->offset, s->message, sizeof s->message)) error = s->message;
  s->job.error = error;
  pthread_mutex_lock(&l->m);
  l->failed = l->failed || error;
  l->end_out = s->out;
  l->end_len = s->out_len;
  l->end_at = s->at + s->written;
  l->end_offset = s->offset + s->written;
  l->done++;
  pthread_cond_broadcast(&l->turn);
  pthread_mutex_unlock(&l->m);
}

static void seal_blobs_complete(napi_env env, napi_status status, void *data) {
  SealBlobs *s = data;
  s->lane->settled++;
  napi_value written;
  napi_create_double(env, (double)s->written, &written);
  finish_job(env, &s->job, written);
  free(s->blobs);
  free(s->lens);
  free(s);
}

/*
 * sealBlobs(lane, key, blobs: Uint8Array[], out: Buffer, at, offset, fields: Uint32Array(2n)) -> Promise<number>
 * Blob i is compressed if that makes it smaller, sealed with the nonce counter = its offset in
 * the pack (`offset` is out[at]'s) and written after the one before; fields[2i] gets its
 * length in the pack, fields[2i + 1] 1 if compressed. Resolves with the bytes written.
 * out needs room for every blob's length plus 16 bytes after `at`. With at and offset -1, the
 * blobs go into the same `out` right after those of the lane's call before (which may still
 * be sealing): calls on a lane seal one after another, in the order made. With a sink, the
 * bytes written are written to its file at their offset too, and hashed.
 */
static napi_value seal_blobs(napi_env env, napi_callback_info info) {
  size_t argc = 8, key_len, n_fields;
  napi_value argv[8];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  SealBlobs *s = calloc(1, sizeof *s);
  uint32_t n = 0;
  int64_t at, offset;
  bool is_array = false;
  napi_valuetype sink_type = napi_undefined;
  if (argc == 8) napi_typeof(env, argv[7], &sink_type);
  if (!s || argc < 7 || (sink_type != napi_undefined && get_sink(env, argv[7], &s->sink)) || get_lane(env, argv[0], &s->lane) || get_bytes(env, argv[1], (uint8_t **)&s->key, &key_len) || key_len != KEY_BYTES ||
      napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[2], &n) != napi_ok ||
      get_bytes(env, argv[3], &s->out, &s->out_len) || napi_get_value_int64(env, argv[4], &at) != napi_ok ||
      napi_get_value_int64(env, argv[5], &offset) != napi_ok || (at < 0) != (offset < 0) || at < -1 || offset < -1 ||
      get_typed(env, argv[6], napi_uint32_array, (void **)&s->fields, &n_fields) || n_fields != 2 * (size_t)n ||
      !(s->blobs = calloc(n + 1, sizeof *s->blobs)) || !(s->lens = calloc(n + 1, sizeof *s->lens))) {
    if (s) free(s->blobs), free(s);
    napi_throw_type_error(env, NULL, "sealBlobs(lane, key: 32 bytes, blobs: Uint8Array[], out, at, offset, fields: Uint32Array(2n), sink?)");
    return NULL;
  }
  s->chained = at < 0;
  const char *bad = s->chained && s->lane->issued == 0 ? "sealBlobs: no call before it to follow" : NULL;
  for (uint32_t i = 0; i < n && !bad; i++) {
    napi_value blob;
    napi_get_element(env, argv[2], i, &blob);
    if (get_bytes(env, blob, (uint8_t **)&s->blobs[i], &s->lens[i]) || s->lens[i] > INT32_MAX) bad = "sealBlobs: a blob is not a Uint8Array";
    s->need += s->lens[i] + TAG_BYTES;
  }
  if (!bad && !s->chained && ((uint64_t)at > s->out_len || s->need > s->out_len - (size_t)at)) bad = "sealBlobs: no room in the pack for the blobs";
  if (bad) {
    free(s->blobs), free(s->lens), free(s);
    napi_throw_range_error(env, NULL, bad);
    return NULL;
  }
  s->n = n;
  s->at = s->chained ? 0 : (size_t)at;
  s->offset = s->chained ? 0 : (uint64_t)offset;
  s->ticket = s->lane->issued++;
  return start_job(env, &s->job, argv, argc, "scrate.sealBlobs", seal_blobs_execute, seal_blobs_complete);
}

/*
 * compressInto(lane, data, out, at) -> number: zstd as sealBlobs does it, on this thread,
 * into out[at…]: the compressed length, or 0 when that is not smaller than data (or does not
 * fit in out). Straight into the caller's buffer: a scratch buffer would stay as large as the
 * largest object compressed.
 */
static napi_value compress_into(napi_env env, napi_callback_info info) {
  size_t argc = 4, len, out_len;
  napi_value argv[4], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  Lane *l;
  uint8_t *data, *out;
  uint32_t at;
  if (argc != 4 || get_lane(env, argv[0], &l) || get_bytes(env, argv[1], &data, &len) || get_bytes(env, argv[2], &out, &out_len) ||
      napi_get_value_uint32(env, argv[3], &at) != napi_ok || at > out_len)
    return napi_throw_type_error(env, NULL, "compressInto(lane, data, out, at)"), NULL;
  if (l->settled != l->issued) return napi_throw_error(env, NULL, "compressInto: the lane is busy"), NULL;
  napi_create_uint32(env, (uint32_t)lane_compress(l, data, len, out + at, out_len - at), &result);
  return result;
}

/* One decompression context per thread: the main thread and each restore worker. */
static _Thread_local ZSTD_DCtx *dctx;

static int decompress_to(uint8_t *out, size_t out_len, const uint8_t *data, size_t len) {
  if (!dctx && !(dctx = ZSTD_createDCtx())) return -1;
  size_t n = ZSTD_decompressDCtx(dctx, out, out_len, data, len);
  return ZSTD_isError(n) || n != out_len ? -1 : 0;
}

/* decompressInto(out, data): data must decompress to exactly out.length bytes, or it throws. */
static napi_value decompress_into(napi_env env, napi_callback_info info) {
  size_t argc = 2, out_len, len;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t *out, *data;
  if (argc != 2 || get_bytes(env, argv[0], &out, &out_len) || get_bytes(env, argv[1], &data, &len)) return napi_throw_type_error(env, NULL, "decompressInto(out, data)"), NULL;
  if (decompress_to(out, out_len, data, len)) napi_throw_error(env, NULL, "zstd data does not decompress to the expected size");
  return NULL;
}

/*
 * decompress(data, limit) -> Buffer: a frame that records its size (every one scrate writes), at
 * most `limit` bytes: a frame from the repository claiming more is refused before any allocation.
 */
static napi_value decompress(napi_env env, napi_callback_info info) {
  size_t argc = 2, len;
  napi_value argv[2], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t *data;
  void *out;
  double limit;
  if (argc != 2 || get_bytes(env, argv[0], &data, &len) || napi_get_value_double(env, argv[1], &limit) != napi_ok)
    return napi_throw_type_error(env, NULL, "decompress(data, limit)"), NULL;
  unsigned long long size = ZSTD_getFrameContentSize(data, len);
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > INT32_MAX)
    return napi_throw_error(env, NULL, "not a zstd frame of known size"), NULL;
  if ((double)size > limit) return napi_throw_error(env, NULL, "zstd frame larger than allowed"), NULL;
  if (napi_create_buffer(env, (size_t)size, &out, &result) != napi_ok) return NULL;
  if (decompress_to(out, (size_t)size, data, len)) return napi_throw_error(env, NULL, "zstd data does not decompress to its recorded size"), NULL;
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"hashFiles", NULL, hash_files, NULL, NULL, NULL, napi_default, NULL},
    {"hashChunk", NULL, hash_chunk, NULL, NULL, NULL, napi_default, NULL},
    {"newLane", NULL, new_lane, NULL, NULL, NULL, napi_default, NULL},
    {"sealBlobs", NULL, seal_blobs, NULL, NULL, NULL, napi_default, NULL},
    {"newPackSink", NULL, new_pack_sink, NULL, NULL, NULL, napi_default, NULL},
    {"packSinkWrite", NULL, pack_sink_write, NULL, NULL, NULL, napi_default, NULL},
    {"packSinkDigest", NULL, pack_sink_digest, NULL, NULL, NULL, napi_default, NULL},
    {"compressInto", NULL, compress_into, NULL, NULL, NULL, napi_default, NULL},
    {"decompress", NULL, decompress, NULL, NULL, NULL, napi_default, NULL},
    {"decompressInto", NULL, decompress_into, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
