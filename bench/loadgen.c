/*
 * Load generator and target servers for `npm run bench`: the same client for every proxy.
 * Written in C so that, on a 2-core machine, the client and the target spend as little CPU as
 * possible and the proxy under test gets the rest. Compiled by bench/run.mjs with `cc -O2 -pthread`.
 *
 *   loadgen server ECHO SINK SOURCE UDPECHO     TCP echo, discard and endless-source servers plus a UDP echo
 *   loadgen tput PROXY DST up|down SECONDS      one stream through the proxy (PROXY 0 = direct)
 *   loadgen rate PROXY ECHO CONC SECONDS        CONNECT + 32-byte echo + close, CONC clients in parallel
 *   loadgen idle PROXY ECHO                     holds sessions; stdin: "open N" adds N, "close"/EOF ends
 *   loadgen udp PROXY UDPECHO SECONDS SIZE WIN  datagrams through UDP ASSOCIATE, WIN in flight
 *
 * Every result is one JSON line on stdout. Every loop is bounded by a deadline; alarm() is a backstop.
 * With LOADGEN_USER and LOADGEN_PASS set, the client authenticates with username/password (RFC 1929).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void raise_nofile(void) {
  struct rlimit r = {200000, 200000};
  if (setrlimit(RLIMIT_NOFILE, &r) != 0) {
    getrlimit(RLIMIT_NOFILE, &r);
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static int read_full(int fd, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      return -1;
    }
    got += (size_t)r;
  }
  return 0;
}

static int write_full(int fd, const void *buf, size_t n) {
  size_t put = 0;
  while (put < n) {
    ssize_t w = send(fd, (const char *)buf + put, n - put, MSG_NOSIGNAL);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      return -1;
    }
    put += (size_t)w;
  }
  return 0;
}

static void set_timeout(int fd, double seconds) {
  struct timeval tv = {(time_t)seconds, (suseconds_t)((seconds - (time_t)seconds) * 1e6)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/*
 * Connects to 127.0.0.1:dst, through the SOCKS5 proxy on proxy_port unless it is 0.
 * cmd 1 = CONNECT, 3 = UDP ASSOCIATE; the reply's bound address goes to *bound when given.
 * Greeting and request are sent one after the other (no pipelining), as most clients do.
 */
static const char *user, *pass;

static int socks_open(int proxy_port, int dst, int cmd, struct sockaddr_in *bound) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  set_timeout(fd, 10);
  struct sockaddr_in a = loopback(proxy_port ? proxy_port : dst);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) goto fail;
  if (!proxy_port) return fd;
  /* Username/password (RFC 1929) when LOADGEN_USER and LOADGEN_PASS are set (read in main), else none. */
  unsigned char g[3] = {5, 1, user ? 2 : 0}, m[2];
  if (write_full(fd, g, 3) || read_full(fd, m, 2) || m[0] != 5 || m[1] != g[2]) goto fail;
  if (user) {
    unsigned char up[3 + 255 + 255];
    size_t ul = strlen(user), pl = strlen(pass), n = 0;
    up[n++] = 1;
    up[n++] = (unsigned char)ul;
    memcpy(up + n, user, ul);
    n += ul;
    up[n++] = (unsigned char)pl;
    memcpy(up + n, pass, pl);
    n += pl;
    if (write_full(fd, up, n) || read_full(fd, m, 2) || m[1] != 0) goto fail;
  }
  unsigned char req[10] = {5, (unsigned char)cmd, 0, 1, 127, 0, 0, 1, (unsigned char)(dst >> 8), (unsigned char)dst};
  if (cmd == 3) memset(req + 4, 0, 6); /* UDP: 0.0.0.0:0, "not known yet" */
  unsigned char rep[4 + 16 + 2];
  if (write_full(fd, req, 10) || read_full(fd, rep, 4) || rep[0] != 5 || rep[1] != 0) goto fail;
  size_t alen = rep[3] == 1 ? 4 : rep[3] == 4 ? 16 : 0;
  if (alen == 0 || read_full(fd, rep + 4, alen + 2)) goto fail;
  if (bound) {
    *bound = loopback((rep[4 + alen] << 8) | rep[5 + alen]);
    if (rep[3] == 1 && memcmp(rep + 4, "\0\0\0\0", 4) != 0) memcpy(&bound->sin_addr, rep + 4, 4);
  }
  return fd;
fail:
  close(fd);
  return -1;
}

/* ---------------------------------------------------------------- servers */

enum { K_NONE, K_L_ECHO, K_L_SINK, K_L_SOURCE, K_UDP, K_ECHO, K_SINK, K_SOURCE };
#define MAXFD (1 << 18)
static unsigned char kind[MAXFD];

static int listen_on(int port, int type) {
  int fd = socket(AF_INET, type | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = loopback(port);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || (type == SOCK_STREAM && listen(fd, 4096) != 0)) {
    fprintf(stderr, "loadgen: cannot listen on %d: %s\n", port, strerror(errno));
    exit(1);
  }
  return fd;
}

static int server(int echo, int sink, int source, int udp) {
  raise_nofile();
  signal(SIGPIPE, SIG_IGN);
  int ep = epoll_create1(0);
  int ports[4] = {echo, sink, source, udp};
  unsigned char kinds[4] = {K_L_ECHO, K_L_SINK, K_L_SOURCE, K_UDP};
  for (int i = 0; i < 4; i++) {
    int fd = listen_on(ports[i], i == 3 ? SOCK_DGRAM : SOCK_STREAM);
    if (i == 3) {
      int sz = 4 << 20;
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    }
    kind[fd] = kinds[i];
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  static char buf[1 << 20];
  memset(buf, 'x', sizeof buf);
  printf("ready\n");
  fflush(stdout);
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, 1000);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      int k = kind[fd];
      if (k == K_L_ECHO || k == K_L_SINK || k == K_L_SOURCE) {
        for (int j = 0; j < 64; j++) {
          int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK);
          if (c < 0) break;
          if (c >= MAXFD) { close(c); continue; }
          int one = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          kind[c] = k == K_L_ECHO ? K_ECHO : k == K_L_SINK ? K_SINK : K_SOURCE;
          struct epoll_event ev = {.events = EPOLLIN | (k == K_L_SOURCE ? EPOLLOUT : 0), .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
        }
      } else if (k == K_UDP) {
        for (int j = 0; j < 64; j++) {
          struct sockaddr_in from;
          socklen_t fl = sizeof from;
          ssize_t r = recvfrom(fd, buf, 65536, 0, (struct sockaddr *)&from, &fl);
          if (r < 0) break;
          sendto(fd, buf, (size_t)r, 0, (struct sockaddr *)&from, fl);
        }
      } else {
        int done = 0;
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
          ssize_t r = read(fd, buf, k == K_SINK ? sizeof buf : 65536);
          if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) done = 1;
          else if (r > 0 && k == K_ECHO && send(fd, buf, (size_t)r, MSG_NOSIGNAL) != r) done = 1;
        }
        if (!done && k == K_SOURCE && (evs[i].events & EPOLLOUT)) {
          ssize_t w = send(fd, buf, sizeof buf, MSG_NOSIGNAL);
          if (w < 0 && errno != EAGAIN && errno != EINTR) done = 1;
        }
        if (done) {
          kind[fd] = K_NONE;
          close(fd); /* also removes it from the epoll set */
        }
      }
    }
  }
}

/* ---------------------------------------------------------------- throughput */

static int tput(int proxy, int dst, int up, double seconds) {
  static char buf[1 << 20];
  memset(buf, 'y', sizeof buf);
  int fd = socks_open(proxy, dst, 1, NULL);
  if (fd < 0) {
    printf("{\"error\":\"connect failed\"}\n");
    return 1;
  }
  double t0 = now(), deadline = t0 + seconds;
  long long bytes = 0;
  if (up) {
    while (now() < deadline) {
      ssize_t w = send(fd, buf, sizeof buf, MSG_NOSIGNAL);
      if (w <= 0) {
        if (w < 0 && errno == EINTR) continue;
        printf("{\"error\":\"write failed: %s\"}\n", strerror(errno));
        return 1;
      }
      bytes += w;
    }
    /* Count only what reached the sink: it closes on our FIN, and its FIN comes back through the proxy. */
    shutdown(fd, SHUT_WR);
    set_timeout(fd, 20);
    while (read(fd, buf, sizeof buf) > 0) {}
  } else {
    while (now() < deadline) {
      ssize_t r = read(fd, buf, sizeof buf);
      if (r <= 0) {
        if (r < 0 && errno == EINTR) continue;
        printf("{\"error\":\"read failed\"}\n");
        return 1;
      }
      bytes += r;
    }
  }
  double t = now() - t0;
  close(fd);
  printf("{\"bytes\":%lld,\"seconds\":%.4f,\"MBps\":%.2f}\n", bytes, t, bytes / t / 1e6);
  return 0;
}

/* ---------------------------------------------------------------- connection rate */

#define LAT_CAP 200000
struct rate_arg {
  int proxy, echo;
  double deadline;
  long count, errors;
  float *lat; /* milliseconds */
};

static void *rate_worker(void *p) {
  struct rate_arg *a = p;
  char msg[32], back[32];
  memset(msg, 'p', sizeof msg);
  while (now() < a->deadline) {
    double t = now();
    int fd = socks_open(a->proxy, a->echo, 1, NULL);
    if (fd < 0 || write_full(fd, msg, sizeof msg) || read_full(fd, back, sizeof back)) {
      if (fd >= 0) close(fd);
      a->errors++;
      usleep(1000);
      continue;
    }
    close(fd);
    if (a->count < LAT_CAP) a->lat[a->count] = (float)((now() - t) * 1e3);
    a->count++;
  }
  return NULL;
}

static int cmp_float(const void *x, const void *y) {
  float a = *(const float *)x, b = *(const float *)y;
  return a < b ? -1 : a > b;
}

static int rate(int proxy, int echo, int conc, double seconds) {
  raise_nofile();
  pthread_t th[1024];
  struct rate_arg args[1024];
  if (conc > 1024) conc = 1024;
  double t0 = now();
  for (int i = 0; i < conc; i++) {
    args[i] = (struct rate_arg){proxy, echo, t0 + seconds, 0, 0, malloc(sizeof(float) * LAT_CAP)};
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 256 << 10);
    pthread_create(&th[i], &at, rate_worker, &args[i]);
  }
  long count = 0, errors = 0, stored = 0;
  for (int i = 0; i < conc; i++) {
    pthread_join(th[i], NULL);
    count += args[i].count;
    errors += args[i].errors;
    stored += args[i].count < LAT_CAP ? args[i].count : LAT_CAP;
  }
  double t = now() - t0;
  float *all = malloc(sizeof(float) * (stored ? stored : 1));
  long k = 0;
  for (int i = 0; i < conc; i++) {
    long c = args[i].count < LAT_CAP ? args[i].count : LAT_CAP;
    memcpy(all + k, args[i].lat, sizeof(float) * c);
    k += c;
  }
  qsort(all, stored, sizeof(float), cmp_float);
  double p50 = stored ? all[stored / 2] : 0, p99 = stored ? all[(long)(stored * 0.99)] : 0;
  printf("{\"count\":%ld,\"errors\":%ld,\"seconds\":%.4f,\"perSecond\":%.1f,\"p50ms\":%.3f,\"p99ms\":%.3f}\n", count, errors, t,
         count / t, p50, p99);
  return 0;
}

/* ---------------------------------------------------------------- idle sessions */

static int *idle_fds;
static long idle_n;
struct idle_arg {
  int proxy, echo;
  long from, to, errors;
};

static void *idle_worker(void *p) {
  struct idle_arg *a = p;
  char msg[16] = "idle-session-ok", back[16];
  for (long i = a->from; i < a->to; i++) {
    int fd = socks_open(a->proxy, a->echo, 1, NULL);
    if (fd >= 0 && (write_full(fd, msg, sizeof msg) || read_full(fd, back, sizeof back))) {
      close(fd);
      fd = -1;
    }
    if (fd < 0) a->errors++;
    idle_fds[i] = fd;
  }
  return NULL;
}

static int idle(int proxy, int echo) {
  raise_nofile();
  idle_fds = calloc(200000, sizeof(int));
  char line[128];
  printf("ready\n");
  fflush(stdout);
  while (fgets(line, sizeof line, stdin)) {
    long n;
    if (sscanf(line, "open %ld", &n) == 1) {
      if (idle_n + n > 200000) n = 200000 - idle_n;
      double t0 = now();
      enum { T = 8 };
      pthread_t th[T];
      struct idle_arg args[T];
      for (int i = 0; i < T; i++) {
        args[i] = (struct idle_arg){proxy, echo, idle_n + n * i / T, idle_n + n * (i + 1) / T, 0};
        pthread_create(&th[i], NULL, idle_worker, &args[i]);
      }
      long errors = 0;
      for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        errors += args[i].errors;
      }
      idle_n += n;
      long open = 0;
      for (long i = 0; i < idle_n; i++) open += idle_fds[i] >= 0;
      printf("{\"open\":%ld,\"errors\":%ld,\"seconds\":%.3f}\n", open, errors, now() - t0);
      fflush(stdout);
    } else if (strncmp(line, "check", 5) == 0) {
      /* Are the held sessions still alive? One more echo round trip on each. */
      long ok = 0, bad = 0;
      char msg[8] = "check!!", back[8];
      for (long i = 0; i < idle_n; i++) {
        if (idle_fds[i] < 0) continue;
        if (write_full(idle_fds[i], msg, sizeof msg) || read_full(idle_fds[i], back, sizeof back)) bad++;
        else ok++;
      }
      printf("{\"alive\":%ld,\"dead\":%ld}\n", ok, bad);
      fflush(stdout);
    } else {
      break;
    }
  }
  for (long i = 0; i < idle_n; i++)
    if (idle_fds[i] >= 0) close(idle_fds[i]);
  printf("{\"closed\":%ld}\n", idle_n);
  return 0;
}

/* ---------------------------------------------------------------- UDP */

static int udp(int proxy, int echo, double seconds, int size, int window) {
  struct sockaddr_in relay = loopback(echo);
  int ctl = -1;
  if (proxy) {
    ctl = socks_open(proxy, 0, 3, &relay);
    if (ctl < 0) {
      printf("{\"error\":\"UDP ASSOCIATE refused\"}\n");
      return 1;
    }
  }
  int hdr = proxy ? 10 : 0;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int sz = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  struct sockaddr_in self = loopback(0);
  bind(fd, (struct sockaddr *)&self, sizeof self);
  if (connect(fd, (struct sockaddr *)&relay, sizeof relay) != 0) return 1;
  unsigned char out[65536], in[65536];
  memset(out, 'u', sizeof out);
  if (proxy) {
    unsigned char h[10] = {0, 0, 0, 1, 127, 0, 0, 1, (unsigned char)(echo >> 8), (unsigned char)echo};
    memcpy(out, h, 10);
  }
  long sent = 0, received = 0, bad = 0, inflight = 0;
  double t0 = now(), deadline = t0 + seconds;
  struct pollfd pfd = {fd, POLLIN, 0};
  while (now() < deadline) {
    while (inflight < window) {
      if (send(fd, out, (size_t)(hdr + size), 0) < 0) break;
      sent++;
      inflight++;
    }
    /* A window's worth lost: give up on it after 20 ms and send a new one. */
    if (poll(&pfd, 1, 20) <= 0) {
      inflight = 0;
      continue;
    }
    for (;;) {
      ssize_t r = recv(fd, in, sizeof in, MSG_DONTWAIT);
      if (r < 0) break;
      if (r == hdr + size) received++;
      else bad++;
      if (inflight > 0) inflight--;
    }
  }
  double t = now() - t0;
  double drain = now() + 0.2; /* late answers still count as received, not lost */
  while (now() < drain && poll(&pfd, 1, 20) > 0)
    while (recv(fd, in, sizeof in, MSG_DONTWAIT) == hdr + size) received++;
  long lost = sent - received;
  printf("{\"sent\":%ld,\"received\":%ld,\"lost\":%ld,\"bad\":%ld,\"seconds\":%.4f,\"perSecond\":%.1f,\"lossPct\":%.3f}\n", sent, received,
         lost < 0 ? 0 : lost, bad, t, received / t, sent ? 100.0 * (lost < 0 ? 0 : lost) / sent : 0);
  close(fd);
  if (ctl >= 0) close(ctl);
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the bench */
  alarm(900);
  user = getenv("LOADGEN_USER");
  pass = getenv("LOADGEN_PASS");
  if (user && (!pass || strlen(user) > 255 || strlen(pass) > 255)) user = NULL;
  if (argc >= 6 && !strcmp(argv[1], "server")) return server(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
  if (argc >= 6 && !strcmp(argv[1], "tput")) return tput(atoi(argv[2]), atoi(argv[3]), !strcmp(argv[4], "up"), atof(argv[5]));
  if (argc >= 6 && !strcmp(argv[1], "rate")) return rate(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atof(argv[5]));
  if (argc >= 4 && !strcmp(argv[1], "idle")) return idle(atoi(argv[2]), atoi(argv[3]));
  if (argc >= 7 && !strcmp(argv[1], "udp")) return udp(atoi(argv[2]), atoi(argv[3]), atof(argv[4]), atoi(argv[5]), atoi(argv[6]));
  fprintf(stderr, "usage: see the comment at the top of bench/loadgen.c\n");
  return 2;
}
