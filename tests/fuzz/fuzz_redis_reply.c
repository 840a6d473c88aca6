/* fuzz_redis_reply.c - libFuzzer driver for what the node decodes from Redis (node/rdecode.h):
 * the claim script's session record, an event replay, and a resource update off the pub/sub
 * channel. The Redis a node talks to may be shared, restored from an old dump or written by
 * another version: nothing in a reply is trusted.
 *
 * Input: byte 0 even - the rest is a RESP byte stream, decoded by hiredis's reader (the one
 * the node's connection uses) and every reply it yields goes through all three decoders;
 * odd - the rest is one pub/sub payload. Checks besides "no crash": a decoded session is
 * within its enums and names the session asked for; every replayed event has a URI; a decoded
 * update's URI is exactly the bytes after its second space. */
#include "node/rdecode.h"

#include "node/proto.h"

#include <hiredis/read.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void visit(void *arg, const struct mcpgw_store_event *ev)
{
    (*(unsigned *)arg)++;
    if (!ev->uri)
        abort();
}

static void check_payload(const char *p, size_t len)
{
    struct mcpgw_store_event ev;
    char uri[MCPGW_URI_MAX + 1];
    /* a heap copy with no terminator: an over-read is the sanitizer's to see */
    char *copy = malloc(len ? len : 1);
    memcpy(copy, p, len);
    if (mcpgw_rdecode_uri_event(copy, len, &ev, uri) == 0) {
        const char *sp1 = memchr(copy, ' ', len);
        const char *sp2 = memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - copy));
        size_t ulen = len - (size_t)(sp2 + 1 - copy);
        if (ev.uri != uri || strlen(uri) != ulen || memcmp(uri, sp2 + 1, ulen) != 0)
            abort();
    }
    if (mcpgw_rdecode_list_event(copy, len, &ev, uri) == 0) {
        const char *sp = memchr(copy, ' ', len);
        size_t klen = len - (size_t)(sp + 1 - copy);
        if (ev.uri != uri || uri[0] != MCPGW_STORE_LIST_PREFIX[0] || strlen(uri) != klen + 1 ||
            memcmp(uri + 1, sp + 1, klen) != 0 || ev.version != 0)
            abort();
    }
    free(copy);
}

static void check_reply(const redisReply *r)
{
    struct mcpgw_session *s = NULL;
    const char *why;
    uint64_t at;
    unsigned n = 0;
    int rc = mcpgw_rdecode_claim(r, "mcpgw-fuzz-session", &s, &why);
    if ((rc == MCPGW_STORE_OK) != (s != NULL))
        abort();
    if (s) {
        if (strcmp(s->id, "mcpgw-fuzz-session") != 0 || s->proto >= MCPGW_PROTO_COUNT ||
            s->state >= MCPGW_SESSION_STATE_COUNT || !s->client)
            abort();
        mcpgw_session_free(s);
    }
    if (mcpgw_rdecode_replay(r, &at, visit, &n) != MCPGW_STORE_OK && n)
        abort(); /* a refused reply delivers nothing */
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[2]->type == REDIS_REPLY_STRING)
        check_payload(r->element[2]->str, r->element[2]->len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    redisReader *rd;
    void *reply;
    if (size < 1)
        return 0;
    if (data[0] & 1) {
        check_payload((const char *)data + 1, size - 1);
        return 0;
    }
    rd = redisReaderCreate();
    mcpgw_rdecode_cap_reader(rd); /* as the node's connections are */
    if (redisReaderFeed(rd, (const char *)data + 1, size - 1) == REDIS_OK)
        while (redisReaderGetReply(rd, &reply) == REDIS_OK && reply) {
            check_reply(reply);
            freeReplyObject(reply);
        }
    redisReaderFree(rd);
    return 0;
}
