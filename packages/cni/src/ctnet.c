/*
 * ctnet CNI plugin: the shim a runtime executes. It forwards the call (the CNI_* environment
 * and the configuration on stdin) over the ctnet agent's local unix socket and prints what the
 * agent answers; all logic lives in the agent (TypeScript). It is C because a runtime starts
 * the plugin once per container and interface: Node.js takes ~55 ms to start here before
 * running a line, this takes ~1 ms (see the CNI issue's note).
 *
 * Wire (one connection per call):
 *   request:  "CTNET-CNI 1\n", then NAME=VALUE\0 for each CNI_* variable, then \0, then stdin
 *             to the end (the write side is shut down)
 *   response: '0' (success) or '1' (failure), then the bytes to print, to the end
 *
 * The shim answers VERSION itself, and an unreachable agent with error 11 (try again later;
 * 50, plugin not available, for STATUS).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/ctnet/cni.sock"
#define VERSIONS "[\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]"
#define MAX_STDIN (4 << 20)

extern char **environ;

static char *read_all(int fd, size_t *len) {
  size_t cap = 8192, n = 0;
  char *buf = malloc(cap + 1);
  for (;;) {
    if (!buf) return NULL;
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
    if (n == cap) {
      if (cap >= MAX_STDIN) break;
      cap *= 2;
      buf = realloc(buf, cap + 1);
    }
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

/*
 * The string value of a "key": "value" in the configuration: 1 when found, 0 when absent,
 * -1 when present but not a plain string that fits (escapes, too long). out is written only
 * on success.
 */
static int json_string(const char *json, const char *key, char *out, size_t outlen) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\"", key);
  const char *p = strstr(json, pat);
  if (!p) return 0;
  p += strlen(pat);
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  if (*p++ != ':') return -1;
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  if (*p++ != '"') return -1;
  const char *end = p;
  while (*end && *end != '"' && *end != '\\') end++;
  if (*end != '"' || (size_t)(end - p) + 1 > outlen) return -1;
  memcpy(out, p, (size_t)(end - p));
  out[end - p] = 0;
  return 1;
}

static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t w = write(fd, buf, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    buf += w;
    len -= (size_t)w;
  }
  return 0;
}

static int fail(const char *version, int code, const char *msg, const char *what, const char *details) {
  printf("{\"cniVersion\":\"%s\",\"code\":%d,\"msg\":\"%s%s\",\"details\":\"%s\"}\n", version, code, msg, what, details);
  return 1;
}

int main(void) {
  /* An agent that goes away mid-call must not kill us silently: write() returns EPIPE instead. */
  signal(SIGPIPE, SIG_IGN);
  const char *cmd = getenv("CNI_COMMAND");
  /* stdin is read first, whatever the verb: a runtime writing the configuration to a plugin
     that exited without reading it would get EPIPE. */
  size_t inlen = 0;
  char *in = isatty(0) ? calloc(1, 1) : read_all(0, &inlen);
  if (!in) return fail("1.1.0", 5, "reading stdin failed", "", "");
  if (inlen >= MAX_STDIN) return fail("1.1.0", 7, "the network configuration is larger than 4 MiB", "", "");
  if (cmd && strcmp(cmd, "VERSION") == 0) {
    /* The answer's cniVersion is the one asked in, when it is one of ours. */
    char asked[32] = "1.1.0", quoted[36] = "";
    if (json_string(in, "cniVersion", asked, sizeof asked) == 1) snprintf(quoted, sizeof quoted, "\"%s\"", asked);
    if (!strstr(VERSIONS, quoted)) strcpy(asked, "1.1.0");
    printf("{\"cniVersion\":\"%s\",\"supportedVersions\":" VERSIONS "}\n", asked);
    return 0;
  }
  /* The agent parses the configuration; a shim that cannot even find an object says so itself
     (it would otherwise look for the agent's socket in garbage). */
  size_t a = strspn(in, " \t\r\n"), z = inlen;
  while (z > a && strchr(" \t\r\n", in[z - 1])) z--;
  if (z <= a || in[a] != '{' || in[z - 1] != '}') {
    return fail("1.1.0", 6, "the network configuration on stdin is not a JSON object", "", "pass the network configuration (one conflist entry) on stdin");
  }
  char version[32] = "1.1.0", path[sizeof(((struct sockaddr_un *)0)->sun_path)] = DEFAULT_SOCKET;
  if (json_string(in, "cniVersion", version, sizeof version) != 1 || strspn(version, "0123456789.") != strlen(version)) strcpy(version, "1.1.0");
  if (json_string(in, "agentSocket", path, sizeof path) < 0) {
    return fail(version, 7, "agentSocket must be a plain path of at most 107 bytes", "", "name the agent's --cni-socket path");
  }

  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  memcpy(addr.sun_path, path, strlen(path)); /* path is shorter than sun_path: json_string bounds it */
  if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) {
    char what[200];
    snprintf(what, sizeof what, "%s (%s)", path, strerror(errno));
    /* STATUS asks whether ADD can be served: 50 (not available); every other verb, try again later */
    int code = cmd && strcmp(cmd, "STATUS") == 0 ? 50 : 11;
    return fail(version, code, "the ctnet agent is not reachable on ", what,
                "start ctagent run on this host; it serves the socket (--cni-socket names another path, given to the plugin as agentSocket)");
  }
  /* An ADD may wait for the whole cluster (waitConverged): a generous bound, not a hang. */
  struct timeval tv = {.tv_sec = 120};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int bad = write_all(s, "CTNET-CNI 1\n", 12);
  for (char **e = environ; *e && !bad; e++) {
    if (strncmp(*e, "CNI_", 4) == 0) bad = write_all(s, *e, strlen(*e) + 1);
  }
  if (!bad) bad = write_all(s, "", 1);
  if (!bad) bad = write_all(s, in, inlen);
  shutdown(s, SHUT_WR);
  size_t outlen = 0;
  char *out = bad ? NULL : read_all(s, &outlen);
  if (!out || outlen == 0 || (out[0] != '0' && out[0] != '1')) {
    return fail(version, 11, "the ctnet agent closed the connection without an answer", "", "try again; see the agent log");
  }
  if (out[0] == '1' && outlen == 1) return fail(version, 5, "the ctnet agent refused the request", "", "see the agent log");
  fwrite(out + 1, 1, outlen - 1, stdout);
  return out[0] == '0' ? 0 : 1;
}
