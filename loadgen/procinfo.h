/* procinfo.h - what /proc says about local processes and kernel socket memory. */
#ifndef MCPGW_LOADGEN_PROCINFO_H
#define MCPGW_LOADGEN_PROCINFO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct mcpgw_proc_sample {
    pid_t pid, ppid;
    char comm[16];
    char tag[32];     /* mcpgw-node: its --node-id; otherwise its --listen, or empty */
    uint64_t rss_kb;  /* VmRSS */
    uint64_t hwm_kb;  /* VmHWM: the process's own peak */
    uint64_t file_kb; /* RssFile: mapped files (the binary, shared libraries), shared pages */
};

/* Every process whose comm starts with prefix (e.g. "mcpgw"), up to max. Returns the count. */
int mcpgw_procinfo_scan(const char *prefix, struct mcpgw_proc_sample *out, int max);

/* Keep only the samples of processes named by DIR/ *.pid files (or their children: balancer
 * workers), and the calling process and its children. Returns the new count. */
int mcpgw_procinfo_filter_pidfiles(struct mcpgw_proc_sample *s, int n, const char *dir);

/* Re-read VmRSS and VmHWM of the n samples in place, dropping processes that are gone (cheaper
 * than a scan). Returns the new count. */
int mcpgw_procinfo_refresh(struct mcpgw_proc_sample *s, int n);

/* One process's VmRSS in kB, or 0 when gone. */
uint64_t mcpgw_procinfo_rss_kb(pid_t pid);

struct mcpgw_sockstat {
    long tcp_inuse, tcp_orphan, tcp_tw, tcp_alloc;
    long tcp_mem_pages; /* kernel memory of all TCP sockets, in pages */
};
/* Read /proc/net/sockstat. Returns 0 or -1. */
int mcpgw_procinfo_sockstat(struct mcpgw_sockstat *s);

/* The kernel's slab memory (Slab: of /proc/meminfo, kB): where socket structures live. Returns
 * -1 when unreadable. */
long mcpgw_procinfo_slab_kb(void);

/* The one process whose comm starts with prefix and whose arguments hold flag followed by value
 * (or "flag=value"); value NULL matches any. Returns its pid, 0 when none, -1 when several. */
pid_t mcpgw_procinfo_find(const char *prefix, const char *flag, const char *value);

/* Whether pid has a handler installed for sig (SigCgt in /proc/PID/status). */
int mcpgw_procinfo_catches(pid_t pid, int sig);

/* argv of pid joined by spaces into out; cwd into cwdbuf. Returns 0 or -1. */
int mcpgw_procinfo_cmdline(pid_t pid, char *out, size_t outlen, char *cwdbuf, size_t cwdlen);

#endif
