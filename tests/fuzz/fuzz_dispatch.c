/* fuzz_dispatch.c - libFuzzer driver for the node's JSON-RPC dispatch: a whole node in this
 * process (the unit suites' nodekit: memory store, built-in tools, real httpd and transport)
 * receives each input as the body of a POST, over a loopback connection.
 *
 * Byte 0 picks how it is sent: 0 - on a ready session-era session; 1 - with no session (the
 * initialize path and its refusals); 2 - as a 2026-07-28 request, with the Mcp-Method and
 * Mcp-Name headers taken from the body when it has them, so the stateless dispatch is reached
 * and not only its header checks. The rest is the body.
 *
 * Besides "no crash, no sanitizer report": every answer is a whole HTTP response that is not a
 * 5xx; a JSON answer is JSON-RPC 2.0; and after every input the session still answers ping, so
 * no input can wedge or kill it. Ports: the first free one in 18480-18499. */
#define NK_NO_CHECK
#define NK_TIMEOUT_MS 2000

#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

#define ck_assert_msg(c, ...)                                                                      \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, __VA_ARGS__);                                                          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)
#define ck_assert_int_eq(a, b) ck_assert_msg((a) == (b), "%s != %s (%s)\n", #a, #b, strerror(errno))

#include "tests/unit/node/nodekit.h"

#include <json-c/json.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct nk *k;
static char sid[128];

static void start(void)
{
    for (int port = 18480; port < 18500 && !k; port++) {
        char err[128], addr[64];
        struct mcpgw_httpd *probe;
        struct event_base *b = event_base_new();
        struct mcpgw_httpd_config hc;
        mcpgw_httpd_config_defaults(&hc);
        probe = mcpgw_httpd_new(b, &hc, mcpgw_transport_handle, NULL);
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
        if (mcpgw_httpd_listen(probe, addr, err, sizeof(err)) == 0) {
            mcpgw_httpd_free(probe);
            event_base_free(b);
            k = nk_new(port);
            nk_start(k, 1);
        } else {
            mcpgw_httpd_free(probe);
            event_base_free(b);
        }
    }
    if (!k)
        abort();
    nk_init(k, 1, sid, sizeof(sid));
}

/* A header value from the body, when it is one a client could send as is. */
static int header_safe(const char *v)
{
    if (!v || !*v || strlen(v) > 200)
        return 0;
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || (unsigned char)*v >= 0x7f)
            return 0;
    return 1;
}

static void headers_2026(const char *body, size_t len, char *out, size_t outlen)
{
    json_tokener *t = json_tokener_new();
    json_object *o = json_tokener_parse_ex(t, body, (int)len), *m, *p, *name;
    const char *method = NULL, *nm = NULL;
    size_t n = (size_t)snprintf(out, outlen, "MCP-Protocol-Version: 2026-07-28\r\n");
    json_tokener_free(t);
    if (o && json_object_object_get_ex(o, "method", &m) && json_object_is_type(m, json_type_string))
        method = json_object_get_string(m);
    if (o && json_object_object_get_ex(o, "params", &p) &&
        ((json_object_object_get_ex(p, "name", &name) ||
          json_object_object_get_ex(p, "uri", &name)) &&
         json_object_is_type(name, json_type_string)))
        nm = json_object_get_string(name);
    if (header_safe(method))
        n += (size_t)snprintf(out + n, outlen - n, "Mcp-Method: %s\r\n", method);
    if (header_safe(nm) && n < outlen)
        snprintf(out + n, outlen - n, "Mcp-Name: %s\r\n", nm);
    json_object_put(o);
}

static void check_answer(const struct nk_resp *r)
{
    const char *ct = strcasestr(r->all, "\r\nContent-Type: application/json");
    if (r->status < 200 || r->status >= 500) {
        fprintf(stderr, "status %d:\n%s\n", r->status, r->all);
        abort();
    }
    if (ct && r->status == 200 && !strcasestr(r->all, "Transfer-Encoding: chunked") &&
        strlen(r->body) + 1 < sizeof(r->body)) {
        json_object *o = json_tokener_parse(r->body), *v;
        if (!o || (json_object_is_type(o, json_type_object) &&
                   (!json_object_object_get_ex(o, "jsonrpc", &v) ||
                    strcmp(json_object_get_string(v), "2.0") != 0))) {
            fprintf(stderr, "not JSON-RPC: %s\n", r->body);
            abort();
        }
        json_object_put(o);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char body[6000];
    char extra[600] = "";
    struct nk_resp *r = malloc(sizeof(*r));
    size_t len;
    if (size < 1 || size - 1 >= sizeof(body) || memchr(data + 1, 0, size - 1))
        goto out; /* the request is built as a string; NULs are httpd's fuzzer's business */
    if (!k)
        start();
    len = size - 1;
    memcpy(body, data + 1, len);
    body[len] = '\0';
    switch (data[0] % 3) {
    case 0:
        nk_http(k, "POST", sid, NULL, body, NULL, r);
        break;
    case 1:
        nk_http(k, "POST", NULL, NULL, body, NULL, r);
        break;
    default:
        headers_2026(body, len, extra, sizeof(extra));
        nk_http(k, "POST", NULL, extra, body, NULL, r);
        break;
    }
    if (r->len)
        check_answer(r);
    nk_post(k, sid, "{\"jsonrpc\":\"2.0\",\"id\":\"alive\",\"method\":\"ping\"}", r);
    if (r->status != 200 || !strstr(r->body, "\"id\":\"alive\"")) {
        fprintf(stderr, "the session no longer answers ping:\n%s\n", r->all);
        abort();
    }
out:
    free(r);
    return 0;
}
