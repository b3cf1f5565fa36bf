/*
 * CoAP load generator for the server benchmarks: many simulated devices on
 * 127.0.0.1, each with its own UDP socket and one Confirmable request in flight
 * (NSTART = 1, RFC 7252 section 4.7). Written in C so that the generator is not
 * what limits the rate on a 2-core machine; tools/bench/loadgen.ts compiles it
 * with the system's cc at benchmark time.
 *
 * Modes:
 *   block  GET <path> with Block2 NUM cycling over 0..blocks-1 (each device
 *          starts at a different block), SZX as given.
 *   get    GET <path> without options beyond Uri-Path.
 *   post   POST <path> with Content-Format 60 and the payload given in hex;
 *          with -i, the device index is written as 4 ASCII digits at that
 *          payload offset, so every device sends its own id.
 *   reflect  no client: answers every CON request with an ACK that carries a
 *          payload of -r bytes, to measure the generator's own ceiling.
 *
 * Prints one JSON object on stdout with counts, the elapsed time and the p50 and
 * p99 round-trip latency in microseconds.
 */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEVICES 4096
#define MAX_DATAGRAM 1500
#define TOKEN_BYTES 4
/* CoAP option numbers (RFC 7252 section 12.2, RFC 7959 section 6). */
#define OPTION_URI_PATH 11
#define OPTION_CONTENT_FORMAT 12
#define OPTION_BLOCK2 23
#define FORMAT_CBOR 60
/* Retransmission timeout: the benchmark runs on loopback, where an answer
 * slower than this means a lost datagram rather than a slow server. */
#define RETRANSMIT_US 1000000LL
#define MAX_ATTEMPTS 5

struct device {
  int fd;
  uint16_t mid;
  uint32_t token;
  uint32_t block;
  int attempts;
  int64_t sent_us;
  int64_t first_sent_us;
  int active;
};

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void fail(const char *what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen -p PORT -m block|get|post|reflect [-u PATH] [-c DEVICES] [-n REQUESTS]\n"
          "               [-t TIME_MS] [-b BLOCKS] [-z SZX] [-x PAYLOAD_HEX] [-i ID_OFFSET] [-r REPLY_BYTES]\n"
          "example: loadgen -p 5683 -m block -u d/1192f5901eb8 -c 64 -n 20000 -t 10000 -b 10 -z 6\n");
  exit(2);
}

/* Appends one option with a delta and length below 13 or encoded with one
 * extended byte (RFC 7252 section 3.1); enough for the paths used here. */
static size_t put_option(uint8_t *out, unsigned delta, const uint8_t *value, size_t length) {
  size_t at = 1;
  unsigned delta_nibble = delta < 13 ? delta : 13;
  unsigned length_nibble = length < 13 ? (unsigned)length : 13;
  out[0] = (uint8_t)((delta_nibble << 4) | length_nibble);
  if (delta >= 13) out[at++] = (uint8_t)(delta - 13);
  if (length >= 13) out[at++] = (uint8_t)(length - 13);
  memcpy(out + at, value, length);
  return at + length;
}

struct request_template {
  uint8_t code;
  uint8_t options[256];
  size_t options_length;
  unsigned last_option;
  int with_block2;
  unsigned szx;
  uint8_t payload[512];
  size_t payload_length;
  long id_offset;
};

static size_t build_request(const struct request_template *t, struct device *d, unsigned index, uint8_t *out) {
  size_t at = 0;
  out[at++] = 0x40 | TOKEN_BYTES; /* version 1, CON */
  out[at++] = t->code;
  out[at++] = (uint8_t)(d->mid >> 8);
  out[at++] = (uint8_t)d->mid;
  memcpy(out + at, &d->token, TOKEN_BYTES);
  at += TOKEN_BYTES;
  memcpy(out + at, t->options, t->options_length);
  at += t->options_length;
  if (t->with_block2) {
    uint32_t value = (d->block << 4) | t->szx;
    uint8_t bytes[3];
    size_t length = 0;
    if (value > 0xffff) bytes[length++] = (uint8_t)(value >> 16);
    if (value > 0xff) bytes[length++] = (uint8_t)(value >> 8);
    bytes[length++] = (uint8_t)value;
    at += put_option(out + at, OPTION_BLOCK2 - t->last_option, bytes, length);
  }
  if (t->payload_length > 0) {
    out[at++] = 0xff;
    memcpy(out + at, t->payload, t->payload_length);
    if (t->id_offset >= 0) {
      char digits[5];
      snprintf(digits, sizeof digits, "%04u", index % 10000);
      memcpy(out + at + t->id_offset, digits, 4);
    }
    at += t->payload_length;
  }
  return at;
}

static int compare_int64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Answers every CON request with a piggybacked 2.05 ACK: the cheapest possible
 * server, so the rate against it is the generator's ceiling on this machine. */
static int reflect(int port, size_t reply_bytes) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) fail("socket");
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) fail("bind");
  socklen_t addr_length = sizeof addr;
  getsockname(fd, (struct sockaddr *)&addr, &addr_length);
  printf("{\"port\":%d}\n", ntohs(addr.sin_port));
  fflush(stdout);
  uint8_t in[MAX_DATAGRAM], out[MAX_DATAGRAM];
  if (reply_bytes > 1024) reply_bytes = 1024;
  memset(out, 0x5a, sizeof out);
  /* Runs until killed: SIGTERM's default action ends it. */
  for (;;) {
    struct sockaddr_in from;
    socklen_t from_length = sizeof from;
    ssize_t n = recvfrom(fd, in, sizeof in, 0, (struct sockaddr *)&from, &from_length);
    if (n < 4) continue;
    unsigned token_length = in[0] & 0x0f;
    if (token_length > 8 || (size_t)n < 4 + token_length) continue;
    out[0] = (uint8_t)(0x60 | token_length); /* ACK */
    out[1] = 0x45;                           /* 2.05 Content */
    out[2] = in[2];
    out[3] = in[3];
    memcpy(out + 4, in + 4, token_length);
    size_t at = 4 + token_length;
    out[at++] = 0xff;
    sendto(fd, out, at + reply_bytes, 0, (struct sockaddr *)&from, from_length);
  }
}

int main(int argc, char **argv) {
  int port = 0, devices = 16, opt;
  long max_requests = 1000, time_ms = 5000, blocks = 1, id_offset = -1, reply_bytes = 1024;
  unsigned szx = 6;
  const char *mode = NULL, *path = "", *payload_hex = "";
  while ((opt = getopt(argc, argv, "p:m:u:c:n:t:b:z:x:i:r:")) != -1) {
    switch (opt) {
      case 'p': port = atoi(optarg); break;
      case 'm': mode = optarg; break;
      case 'u': path = optarg; break;
      case 'c': devices = atoi(optarg); break;
      case 'n': max_requests = atol(optarg); break;
      case 't': time_ms = atol(optarg); break;
      case 'b': blocks = atol(optarg); break;
      case 'z': szx = (unsigned)atoi(optarg); break;
      case 'x': payload_hex = optarg; break;
      case 'i': id_offset = atol(optarg); break;
      case 'r': reply_bytes = atol(optarg); break;
      default: usage();
    }
  }
  if (!mode) usage();
  if (strcmp(mode, "reflect") == 0) return reflect(port, (size_t)reply_bytes);
  if (port <= 0 || port > 65535) { fprintf(stderr, "loadgen: -p must be a UDP port 1..65535, got %d\n", port); usage(); }
  if (devices < 1 || devices > MAX_DEVICES) { fprintf(stderr, "loadgen: -c must be 1..%d, got %d\n", MAX_DEVICES, devices); usage(); }
  if (max_requests < 1 || time_ms < 1 || time_ms > 600000) { fprintf(stderr, "loadgen: -n must be >= 1 and -t 1..600000 ms\n"); usage(); }
  if (szx > 6 || blocks < 1) { fprintf(stderr, "loadgen: -z must be 0..6 and -b at least 1\n"); usage(); }

  struct request_template t = {0};
  t.id_offset = id_offset;
  if (strcmp(mode, "block") == 0 || strcmp(mode, "get") == 0) t.code = 0x01;
  else if (strcmp(mode, "post") == 0) t.code = 0x02;
  else usage();
  t.with_block2 = strcmp(mode, "block") == 0;
  t.szx = szx;

  /* Uri-Path options, one per "/"-separated segment. */
  unsigned last = 0;
  const char *segment = path;
  while (*segment) {
    const char *end = strchr(segment, '/');
    size_t length = end ? (size_t)(end - segment) : strlen(segment);
    if (t.options_length + length + 3 > sizeof t.options) { fprintf(stderr, "loadgen: -u path too long\n"); return 2; }
    t.options_length += put_option(t.options + t.options_length, OPTION_URI_PATH - last, (const uint8_t *)segment, length);
    last = OPTION_URI_PATH;
    segment += length;
    if (*segment == '/') segment++;
  }
  if (t.code == 0x02) {
    uint8_t format = FORMAT_CBOR;
    t.options_length += put_option(t.options + t.options_length, OPTION_CONTENT_FORMAT - last, &format, 1);
    last = OPTION_CONTENT_FORMAT;
  }
  t.last_option = last;
  size_t hex_length = strlen(payload_hex);
  if (hex_length % 2 != 0 || hex_length / 2 > sizeof t.payload) { fprintf(stderr, "loadgen: -x must be an even number of hex digits, at most 1024\n"); return 2; }
  for (size_t i = 0; i < hex_length / 2; i++) {
    unsigned byte;
    if (sscanf(payload_hex + 2 * i, "%2x", &byte) != 1) { fprintf(stderr, "loadgen: -x has a non-hex digit at %zu\n", 2 * i); return 2; }
    t.payload[i] = (uint8_t)byte;
  }
  t.payload_length = hex_length / 2;
  if (id_offset >= 0 && (size_t)id_offset + 4 > t.payload_length) { fprintf(stderr, "loadgen: -i %ld is past the payload\n", id_offset); return 2; }

  struct sockaddr_in server = {0};
  server.sin_family = AF_INET;
  server.sin_port = htons((uint16_t)port);
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

  struct device *all = calloc((size_t)devices, sizeof *all);
  struct pollfd *fds = calloc((size_t)devices, sizeof *fds);
  int64_t *latencies = malloc((size_t)max_requests * sizeof *latencies);
  if (!all || !fds || !latencies) fail("calloc");
  srand((unsigned)getpid());
  for (int i = 0; i < devices; i++) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) fail("socket");
    if (connect(fd, (struct sockaddr *)&server, sizeof server) < 0) fail("connect");
    all[i].fd = fd;
    all[i].mid = (uint16_t)rand();
    all[i].token = (uint32_t)rand();
    all[i].block = (uint32_t)((i * 7) % blocks);
    fds[i].fd = fd;
    fds[i].events = POLLIN;
  }

  long sent = 0, done = 0, errors = 0, retransmissions = 0, failed = 0, short_payloads = 0;
  long long bytes_in = 0;
  uint8_t out[MAX_DATAGRAM], in[MAX_DATAGRAM];
  int64_t start = now_us(), deadline = start + time_ms * 1000;
  size_t expected_block = (size_t)16 << szx;

  for (int i = 0; i < devices && sent < max_requests; i++) {
    size_t length = build_request(&t, &all[i], (unsigned)i, out);
    all[i].sent_us = all[i].first_sent_us = now_us();
    all[i].attempts = 1;
    all[i].active = 1;
    if (send(all[i].fd, out, length, 0) < 0) fail("send");
    sent++;
  }

  int active = (int)sent;
  while (active > 0) {
    int64_t now = now_us();
    if (now > deadline) break;
    int ready = poll(fds, (nfds_t)devices, 10);
    if (ready < 0 && errno != EINTR) fail("poll");
    now = now_us();
    for (int i = 0; i < devices; i++) {
      struct device *d = &all[i];
      if (!d->active) continue;
      if (fds[i].revents & POLLIN) {
        ssize_t n = recv(d->fd, in, sizeof in, 0);
        if (n < 4 + TOKEN_BYTES) continue;
        uint16_t mid = (uint16_t)((in[2] << 8) | in[3]);
        if (mid != d->mid || memcmp(in + 4, &d->token, TOKEN_BYTES) != 0) continue;
        bytes_in += n;
        if (in[1] != 0x45) errors++;
        if (t.with_block2) {
          /* The payload follows the 0xff marker; a middle block carries a full block. */
          uint8_t *marker = memchr(in + 4 + TOKEN_BYTES, 0xff, (size_t)n - 4 - TOKEN_BYTES);
          size_t payload = marker ? (size_t)(in + n - marker - 1) : 0;
          if (payload < expected_block && d->block + 1 < (uint32_t)blocks) short_payloads++;
        }
        if (done < max_requests) latencies[done] = now - d->first_sent_us;
        done++;
        d->active = 0;
        active--;
        if (sent < max_requests && now < deadline) {
          d->mid++;
          d->token++;
          d->block = (d->block + 1) % (uint32_t)blocks;
          size_t length = build_request(&t, d, (unsigned)i, out);
          d->sent_us = d->first_sent_us = now;
          d->attempts = 1;
          d->active = 1;
          active++;
          if (send(d->fd, out, length, 0) < 0) fail("send");
          sent++;
        }
      } else if (now - d->sent_us > RETRANSMIT_US) {
        if (d->attempts >= MAX_ATTEMPTS) {
          failed++;
          d->active = 0;
          active--;
          continue;
        }
        size_t length = build_request(&t, d, (unsigned)i, out);
        d->sent_us = now;
        d->attempts++;
        retransmissions++;
        if (send(d->fd, out, length, 0) < 0) fail("send");
      }
    }
  }
  int64_t elapsed = now_us() - start;
  long measured = done < max_requests ? done : max_requests;
  qsort(latencies, (size_t)measured, sizeof *latencies, compare_int64);
  int64_t p50 = measured ? latencies[measured / 2] : 0;
  /* (measured * 99) / 100 is below measured for any measured >= 1, so it is a valid index. */
  int64_t p99 = measured ? latencies[(measured * 99) / 100] : 0;
  printf("{\"requests\":%ld,\"sent\":%ld,\"errors\":%ld,\"shortPayloads\":%ld,\"unanswered\":%ld,\"inFlightAtEnd\":%d,"
         "\"retransmissions\":%ld,\"bytesIn\":%lld,\"elapsedUs\":%lld,\"p50Us\":%lld,\"p99Us\":%lld}\n",
         done, sent, errors, short_payloads, failed, active, retransmissions, bytes_in, (long long)elapsed,
         (long long)p50, (long long)p99);
  for (int i = 0; i < devices; i++) close(all[i].fd);
  return 0;
}
