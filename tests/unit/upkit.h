/* upkit.h - for the upstream client suites: start a real mcpgw-node from the build tree (its path
 * comes from the MCPGW_NODE_BIN compile definition) and run a libevent loop until a condition
 * holds. Include after <check.h>. */
#ifndef MCPGW_TESTS_UPKIT_H
#define MCPGW_TESTS_UPKIT_H

#include <arpa/inet.h>
#include <check.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline long upkit_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* 1 once something accepts TCP connections on 127.0.0.1:port. */
static inline int upkit_port_open(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

#ifdef MCPGW_NODE_BIN
/* Starts mcpgw-node (memory store) on 127.0.0.1:port and waits until it accepts connections.
 * The node dies with the test process (PR_SET_PDEATHSIG), so a failed assertion leaks nothing. */
static inline pid_t upkit_node_start(int port)
{
    char listen[32];
    long deadline = upkit_now_ms() + 10000;
    pid_t pid;
    ck_assert_msg(!upkit_port_open(port), "port %d is already in use", port);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl(MCPGW_NODE_BIN, "mcpgw-node", "--listen", listen, "--node-id", "up1", "--store",
              "memory", "--log-level", "warn", (char *)NULL);
        perror("exec " MCPGW_NODE_BIN);
        _exit(127);
    }
    while (!upkit_port_open(port)) {
        int st;
        ck_assert_msg(waitpid(pid, &st, WNOHANG) == 0, "mcpgw-node exited at start");
        ck_assert_msg(upkit_now_ms() < deadline, "mcpgw-node did not listen within 10 s");
        usleep(10000);
    }
    return pid;
}

static inline void upkit_node_stop(pid_t pid)
{
    int st;
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
}

#endif

static inline void upkit_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Runs the loop until *flag is non-zero or ms pass; returns *flag. */
static inline int upkit_run_until(struct event_base *b, const int *flag, long ms)
{
    long deadline = upkit_now_ms() + ms;
    struct event *tick = event_new(b, -1, EV_PERSIST, upkit_wake, NULL);
    struct timeval tv = {0, 20000};
    event_add(tick, &tv);
    while (!*flag && upkit_now_ms() < deadline)
        event_base_loop(b, EVLOOP_ONCE);
    event_free(tick);
    return *flag;
}

#endif
