/* procinfo.c - /proc readers: process RSS, kernel TCP memory, finding processes by argument. */
#include "loadgen/procinfo.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Read up to len-1 bytes of a small /proc file, NUL-terminated. Returns the byte count or -1. */
static ssize_t slurp(const char *path, char *buf, size_t len)
{
    ssize_t n, total = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    while ((size_t)total < len - 1 && (n = read(fd, buf + total, len - 1 - (size_t)total)) > 0)
        total += n;
    close(fd);
    buf[total] = '\0';
    return total;
}

static uint64_t status_kb(const char *status, const char *key)
{
    const char *p = strstr(status, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

/* Value following flag in a NUL-separated argv of n bytes ("--flag v" or "--flag=v"). */
static const char *arg_value(const char *argv, size_t n, const char *flag)
{
    size_t fl = strlen(flag);
    for (const char *a = argv; a < argv + n; a += strlen(a) + 1) {
        if (strcmp(a, flag) == 0) {
            const char *v = a + strlen(a) + 1;
            return v < argv + n ? v : NULL;
        }
        if (strncmp(a, flag, fl) == 0 && a[fl] == '=')
            return a + fl + 1;
    }
    return NULL;
}

static int read_comm(pid_t pid, char *comm, size_t len)
{
    char path[64];
    ssize_t n;
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    n = slurp(path, comm, len);
    if (n <= 0)
        return -1;
    if (comm[n - 1] == '\n')
        comm[n - 1] = '\0';
    return 0;
}

static ssize_t read_argv(pid_t pid, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    return slurp(path, buf, len);
}

int mcpgw_procinfo_scan(const char *prefix, struct mcpgw_proc_sample *out, int max)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    if (!d)
        return 0;
    while (n < max && (e = readdir(d)) != NULL) {
        char comm[16], path[64], status[4096], argv[4096];
        const char *tag;
        ssize_t an;
        pid_t pid;
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        pid = (pid_t)atoi(e->d_name);
        if (read_comm(pid, comm, sizeof(comm)) < 0 || strncmp(comm, prefix, strlen(prefix)) != 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        if (slurp(path, status, sizeof(status)) <= 0)
            continue;
        memset(&out[n], 0, sizeof(out[n]));
        out[n].pid = pid;
        out[n].ppid = (pid_t)status_kb(status, "PPid:");
        snprintf(out[n].comm, sizeof(out[n].comm), "%s", comm);
        out[n].rss_kb = status_kb(status, "VmRSS:");
        out[n].hwm_kb = status_kb(status, "VmHWM:");
        out[n].file_kb = status_kb(status, "RssFile:");
        an = read_argv(pid, argv, sizeof(argv));
        if (an > 0) {
            tag = arg_value(argv, (size_t)an, "--node-id");
            if (!tag)
                tag = arg_value(argv, (size_t)an, "--listen");
            if (tag)
                snprintf(out[n].tag, sizeof(out[n].tag), "%s", tag);
        }
        n++;
    }
    closedir(d);
    return n;
}

int mcpgw_procinfo_filter_pidfiles(struct mcpgw_proc_sample *s, int n, const char *dir)
{
    pid_t pids[256], self = getpid();
    int np = 0, k = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        return n; /* no such folder: the drills will say so; keep every sample */
    while (np < (int)(sizeof(pids) / sizeof(pids[0])) && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        char path[4096], buf[32];
        if (len < 5 || strcmp(e->d_name + len - 4, ".pid") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (slurp(path, buf, sizeof(buf)) > 0 && atoi(buf) > 0)
            pids[np++] = (pid_t)atoi(buf);
    }
    closedir(d);
    for (int i = 0; i < n; i++) {
        int keep = s[i].pid == self || s[i].ppid == self;
        for (int j = 0; j < np && !keep; j++)
            keep = s[i].pid == pids[j] || s[i].ppid == pids[j];
        if (keep)
            s[k++] = s[i];
    }
    return k;
}

int mcpgw_procinfo_refresh(struct mcpgw_proc_sample *s, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        char path[64], status[4096];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)s[i].pid);
        if (slurp(path, status, sizeof(status)) <= 0)
            continue;
        s[k] = s[i];
        s[k].rss_kb = status_kb(status, "VmRSS:");
        s[k].hwm_kb = status_kb(status, "VmHWM:");
        s[k].file_kb = status_kb(status, "RssFile:");
        k++;
    }
    return k;
}

uint64_t mcpgw_procinfo_rss_kb(pid_t pid)
{
    char path[64], status[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (slurp(path, status, sizeof(status)) <= 0)
        return 0;
    return status_kb(status, "VmRSS:");
}

int mcpgw_procinfo_sockstat(struct mcpgw_sockstat *s)
{
    char buf[2048];
    const char *p;
    memset(s, 0, sizeof(*s));
    if (slurp("/proc/net/sockstat", buf, sizeof(buf)) <= 0)
        return -1;
    p = strstr(buf, "\nTCP:");
    if (!p)
        return -1;
    if (sscanf(p + 1, "TCP: inuse %ld orphan %ld tw %ld alloc %ld mem %ld", &s->tcp_inuse,
               &s->tcp_orphan, &s->tcp_tw, &s->tcp_alloc, &s->tcp_mem_pages) != 5)
        return -1;
    return 0;
}

long mcpgw_procinfo_slab_kb(void)
{
    char buf[8192];
    const char *p;
    if (slurp("/proc/meminfo", buf, sizeof(buf)) <= 0 || !(p = strstr(buf, "\nSlab:")))
        return -1;
    return strtol(p + 6, NULL, 10);
}

pid_t mcpgw_procinfo_find(const char *prefix, const char *flag, const char *value)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t found = 0, self = getpid();
    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char comm[16], argv[8192];
        const char *v;
        ssize_t an;
        pid_t pid;
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        pid = (pid_t)atoi(e->d_name);
        if (pid == self || read_comm(pid, comm, sizeof(comm)) < 0 ||
            strncmp(comm, prefix, strlen(prefix)) != 0)
            continue;
        if (flag) {
            an = read_argv(pid, argv, sizeof(argv));
            if (an <= 0 || !(v = arg_value(argv, (size_t)an, flag)))
                continue;
            if (value && strcmp(v, value) != 0)
                continue;
        }
        if (found) {
            found = -1;
            break;
        }
        found = pid;
    }
    closedir(d);
    return found;
}

int mcpgw_procinfo_catches(pid_t pid, int sig)
{
    char path[64], status[4096];
    const char *p;
    unsigned long long mask;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (slurp(path, status, sizeof(status)) <= 0 || !(p = strstr(status, "SigCgt:")))
        return 0;
    mask = strtoull(p + 7, NULL, 16);
    return sig > 0 && sig <= 64 && ((mask >> (sig - 1)) & 1);
}

int mcpgw_procinfo_cmdline(pid_t pid, char *out, size_t outlen, char *cwdbuf, size_t cwdlen)
{
    char argv[8192], path[64];
    ssize_t an = read_argv(pid, argv, sizeof(argv)), k;
    if (an <= 0)
        return -1;
    for (ssize_t i = 0; i < an - 1; i++)
        if (argv[i] == '\0')
            argv[i] = ' ';
    snprintf(out, outlen, "%s", argv);
    snprintf(path, sizeof(path), "/proc/%d/cwd", (int)pid);
    k = readlink(path, cwdbuf, cwdlen - 1);
    cwdbuf[k > 0 ? k : 0] = '\0';
    return 0;
}
