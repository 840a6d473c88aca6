/* test_catnotify.c - list changes told to clients (node/catnotify.c) on a whole node in this
 * process with the memory store (nodekit.h); port 12392. With Redis and a cluster:
 * tests/integration/57-2026-listen-lists.mjs. */
#include "node/catnotify.h"

#include "node/catalog.h"
#include "node/protocol.h"

#include <check.h>

#include "tests/unit/node/nodekit.h"

#define META26                                                                                     \
    "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","                       \
    "\"io.modelcontextprotocol/clientCapabilities\":{}}"

/* A listen stream asking for tools and prompts list changes; its acknowledgement read. */
static int listen_stream(struct nk *k)
{
    static const char body[] =
        "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"subscriptions/listen\",\"params\":{"
        "\"notifications\":{\"toolsListChanged\":true,\"promptsListChanged\":true}," META26 "}}";
    char req[1024], buf[4096] = "";
    int fd = nk_connect(k),
        n = snprintf(req, sizeof(req),
                     "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: "
                     "2026-07-28\r\nMcp-Method: subscriptions/listen\r\nContent-Length: %zu\r\n\r\n"
                     "%s",
                     strlen(body), body);
    ck_assert_int_eq(send(fd, req, (size_t)n, 0), n);
    ck_assert_msg(nk_read_until(k, fd, "acknowledged", buf, sizeof(buf)), "listen: %s", buf);
    return fd;
}

/* What arrived on fd within ms (the loop pumped meanwhile). */
static void drain(struct nk *k, int fd, unsigned ms, char *buf, size_t cap)
{
    size_t len = 0;
    uint64_t end = nk_now_ms() + ms;
    buf[0] = '\0';
    while (nk_now_ms() < end) {
        ssize_t got;
        nk_pump(k);
        got = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
        if (got > 0) {
            len += (size_t)got;
            buf[len] = '\0';
        } else {
            usleep(1000);
        }
    }
}

static int occurrences(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* A catalogue report whose lists hash as the node last announced them is not told again: a
 * rebuild that changed nothing a client sees costs nothing and sends nothing. */
START_TEST(test_catnotify_tells_a_list_change_once_per_state)
{
    struct nk *k = nk_new(12392);
    char sid[128], buf[8192];
    int fd, get;
    nk_start(k, 1); /* with cluster.c: the session goes with the node */
    mcpgw_protocol_configure(&k->n);
    fd = listen_stream(k);
    nk_init(k, 1, sid, sizeof(sid));
    get = nk_get_stream(k, sid);
    /* The first report of a kind is told (nothing was announced since the start); the same
     * state again is not. */
    mcpgw_catnotify_catalog(&k->n, 1u << MCPGW_CATALOG_TOOLS);
    mcpgw_catnotify_catalog(&k->n, 1u << MCPGW_CATALOG_TOOLS);
    drain(k, fd, 300, buf, sizeof(buf));
    ck_assert_msg(occurrences(buf, "notifications/tools/list_changed") == 1, "listen got %s", buf);
    ck_assert_msg(!strstr(buf, "prompts/list_changed"), "listen got %s", buf);
    /* What serves the node changed: every kind whose state was not told yet is (prompts,
     * resources), tools not again; a second report of the same state tells nothing. */
    mcpgw_catnotify_providers(&k->n);
    mcpgw_catnotify_providers(&k->n);
    drain(k, fd, 300, buf, sizeof(buf));
    ck_assert_msg(occurrences(buf, "notifications/prompts/list_changed") == 1 &&
                      !strstr(buf, "tools/list_changed") && !strstr(buf, "resources/list_changed"),
                  "listen got %s", buf);
    /* A drill is a change of its own each time. */
    mcpgw_catnotify_drill(&k->n, MCPGW_LISTEN_TOOLS);
    mcpgw_catnotify_drill(&k->n, MCPGW_LISTEN_TOOLS);
    drain(k, fd, 300, buf, sizeof(buf));
    ck_assert_msg(occurrences(buf, "notifications/tools/list_changed") == 2, "listen got %s", buf);
    /* The session's GET stream heard every kind: tools, prompts, resources, then the drills. */
    drain(k, get, 300, buf, sizeof(buf));
    ck_assert_msg(occurrences(buf, "notifications/tools/list_changed") == 3 &&
                      occurrences(buf, "notifications/prompts/list_changed") == 1 &&
                      occurrences(buf, "notifications/resources/list_changed") == 1,
                  "GET stream got %s", buf);
    close(fd);
    close(get);
    nk_free(k);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("catnotify");
    TCase *t = tcase_create("catnotify");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, test_catnotify_tells_a_list_change_once_per_state);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    int failed;
    srunner_run_all(r, CK_NORMAL);
    failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
