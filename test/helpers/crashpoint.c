/*
 * A test-only LD_PRELOAD shim (test/helpers/crashpoint.ts builds and loads it): it watches the
 * file system calls a scrate process makes on a repository and can stop the process at an
 * exact one of them, so that a test kills (SIGKILL) or resumes (SIGCONT) it right there, and
 * can make calls fail. Nothing here changes what a call does unless a rule says so.
 *
 * Calls, by the name rules use ("op"), and the path they are matched on:
 *   create  open/openat with O_CREAT     the path created
 *   open    open/openat without O_CREAT  the path opened (files and directories)
 *   rename  rename/renameat/renameat2    the new path
 *   link    link/linkat                  the new path
 *   unlink  unlink/unlinkat              the path removed
 *
 * Rules, from the environment (regular expressions are POSIX extended ones, matched anywhere
 * in the path unless anchored):
 *   CRASHPOINT_SCOPE   calls on paths matching it are traced; the other rules only see them
 *   CRASHPOINT_TRACE   file that every call in scope is appended to, one line each:
 *                      "<op> <result> <path>" (result "ok" or the errno number), and
 *                      "stop <op> <path>" right before the process stops
 *   CRASHPOINT_STOP    "<before|after> <op> <n> <regex>": the whole process stops (SIGSTOP)
 *                      at the n-th successful call of op on a matching path, before it is made
 *                      (the n-th attempt) or after it returned
 *   CRASHPOINT_FAIL    "<op> <n> <regex>": from the n-th matching call of op on, each fails
 *                      with EIO without being made
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

enum op { OP_CREATE, OP_OPEN, OP_RENAME, OP_LINK, OP_UNLINK, OP_NONE };
static const char *const OP_NAMES[] = {"create", "open", "rename", "link", "unlink"};

struct rule {
  int active;
  int before;
  enum op op;
  long n;
  long seen;
  regex_t re;
};

static int trace_fd = -1;
static int have_scope;
static regex_t scope;
static struct rule stop_rule, fail_rule;

static enum op op_named(const char *s, size_t len) {
  for (int i = 0; i < OP_NONE; i++)
    if (strlen(OP_NAMES[i]) == len && strncmp(s, OP_NAMES[i], len) == 0) return (enum op)i;
  return OP_NONE;
}

/* Parses "[before|after ]<op> <n> <regex>" into r; a malformed rule aborts the process. */
static void parse_rule(const char *var, struct rule *r, int has_when) {
  const char *s = getenv(var);
  if (!s || !*s) return;
  if (has_when) {
    if (strncmp(s, "before ", 7) == 0) {
      r->before = 1;
      s += 7;
    } else if (strncmp(s, "after ", 6) == 0) {
      s += 6;
    } else {
      goto bad;
    }
  }
  const char *sp = strchr(s, ' ');
  if (!sp || (r->op = op_named(s, (size_t)(sp - s))) == OP_NONE) goto bad;
  char *end;
  r->n = strtol(sp + 1, &end, 10);
  if (end == sp + 1 || *end != ' ' || r->n < 1) goto bad;
  if (regcomp(&r->re, end + 1, REG_EXTENDED | REG_NOSUB) != 0) goto bad;
  r->active = 1;
  return;
bad:
  fprintf(stderr, "crashpoint: bad %s: %s\n", var, getenv(var));
  abort();
}

__attribute__((constructor)) static void init(void) {
  const char *sc = getenv("CRASHPOINT_SCOPE");
  if (sc && *sc) {
    if (regcomp(&scope, sc, REG_EXTENDED | REG_NOSUB) != 0) {
      fprintf(stderr, "crashpoint: bad CRASHPOINT_SCOPE\n");
      abort();
    }
    have_scope = 1;
  }
  const char *t = getenv("CRASHPOINT_TRACE");
  if (t && *t) trace_fd = (int)syscall(SYS_openat, AT_FDCWD, t, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  parse_rule("CRASHPOINT_STOP", &stop_rule, 1);
  parse_rule("CRASHPOINT_FAIL", &fail_rule, 0);
}

static void trace(const char *what, const char *op, const char *path) {
  if (trace_fd < 0) return;
  char line[4200];
  int n = snprintf(line, sizeof line, "%s %s %s\n", op, what, path);
  if (n > 0 && (size_t)n < sizeof line) (void)!write(trace_fd, line, (size_t)n); /* O_APPEND: one line at a time */
}

static int in_scope(const char *path) {
  return have_scope && path && regexec(&scope, path, 0, NULL, 0) == 0;
}

/* Whether this call is the one to stop at: counts it when it matches. */
static int stop_now(enum op op, const char *path, int before) {
  if (!stop_rule.active || stop_rule.op != op || stop_rule.before != before) return 0;
  if (regexec(&stop_rule.re, path, 0, NULL, 0) != 0) return 0;
  return __atomic_add_fetch(&stop_rule.seen, 1, __ATOMIC_SEQ_CST) == stop_rule.n;
}

static void stop(enum op op, const char *path) {
  char what[64];
  snprintf(what, sizeof what, "%s", OP_NAMES[op]);
  trace(what, "stop", path);
  /* Directed at this thread: a process-directed SIGSTOP may be taken by another thread while
     this one returns and makes the very call it was to stop before (a file operation of Node's
     thread pool went ahead 7 times in 8). */
  syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), SIGSTOP);
}

/* Runs before a call: 1 if it must fail instead (errno set). */
static int before_call(enum op op, const char *path) {
  if (!in_scope(path)) return 0;
  if (fail_rule.active && fail_rule.op == op && regexec(&fail_rule.re, path, 0, NULL, 0) == 0 &&
      __atomic_add_fetch(&fail_rule.seen, 1, __ATOMIC_SEQ_CST) >= fail_rule.n) {
    trace("failed-injected", OP_NAMES[op], path);
    errno = EIO;
    return 1;
  }
  if (stop_now(op, path, 1)) stop(op, path);
  return 0;
}

/* Runs after a call that was made: traces it, and stops after the chosen one. */
static void after_call(enum op op, const char *path, int failed, int err) {
  if (!in_scope(path)) return;
  char result[16];
  if (failed) snprintf(result, sizeof result, "%d", err);
  else snprintf(result, sizeof result, "ok");
  trace(result, OP_NAMES[op], path);
  if (!failed && stop_now(op, path, 0)) stop(op, path);
  errno = err;
}

#define REAL(name) \
  static __typeof__(&name) real_##name; \
  if (!real_##name) real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

/* The optional mode argument of open(2) and openat(2), after `last`. */
#define MODE_AFTER(last)                                   \
  mode_t mode = 0;                                         \
  if (flags & (O_CREAT | __O_TMPFILE)) {                   \
    va_list ap;                                            \
    va_start(ap, last);                                    \
    mode = (mode_t)va_arg(ap, int);                        \
    va_end(ap);                                            \
  }

/* Runs `call` (returning 0 or a descriptor, -1 on failure) as `op` on `path`, under the rules. */
#define CALL(op, path, call)                               \
  if (before_call(op, path)) return -1;                    \
  int r = (call);                                          \
  after_call(op, path, r < 0, errno);                      \
  return r

#define OPEN_OP (flags & O_CREAT ? OP_CREATE : OP_OPEN)

int open(const char *path, int flags, ...) {
  MODE_AFTER(flags);
  REAL(open);
  CALL(OPEN_OP, path, real_open(path, flags, mode));
}

int open64(const char *path, int flags, ...) {
  MODE_AFTER(flags);
  REAL(open64);
  CALL(OPEN_OP, path, real_open64(path, flags, mode));
}

int openat(int dirfd, const char *path, int flags, ...) {
  MODE_AFTER(flags);
  REAL(openat);
  CALL(OPEN_OP, path, real_openat(dirfd, path, flags, mode));
}

int openat64(int dirfd, const char *path, int flags, ...) {
  MODE_AFTER(flags);
  REAL(openat64);
  CALL(OPEN_OP, path, real_openat64(dirfd, path, flags, mode));
}

int rename(const char *from, const char *to) {
  REAL(rename);
  CALL(OP_RENAME, to, real_rename(from, to));
}

int renameat(int fromfd, const char *from, int tofd, const char *to) {
  REAL(renameat);
  CALL(OP_RENAME, to, real_renameat(fromfd, from, tofd, to));
}

int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned int flags) {
  REAL(renameat2);
  CALL(OP_RENAME, to, real_renameat2(fromfd, from, tofd, to, flags));
}

int link(const char *from, const char *to) {
  REAL(link);
  CALL(OP_LINK, to, real_link(from, to));
}

int linkat(int fromfd, const char *from, int tofd, const char *to, int flags) {
  REAL(linkat);
  CALL(OP_LINK, to, real_linkat(fromfd, from, tofd, to, flags));
}

int unlink(const char *path) {
  REAL(unlink);
  CALL(OP_UNLINK, path, real_unlink(path));
}

int unlinkat(int dirfd, const char *path, int flags) {
  REAL(unlinkat);
  CALL(OP_UNLINK, path, real_unlinkat(dirfd, path, flags));
}
