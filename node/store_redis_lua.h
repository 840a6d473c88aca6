/* store_redis_lua.h - the Redis store's keys, channels and Lua scripts (docs/replication.md):
 * the text the store sends to Redis, kept apart from the C that sends it. Included by
 * store_redis.c only (an internal pair, like store.c and store-impl.h). */
#ifndef MCPGW_NODE_STORE_REDIS_LUA_H
#define MCPGW_NODE_STORE_REDIS_LUA_H

#include "node/rdecode.h"

#define EV_MAXLEN     "1000"
#define RESULT_TTL_MS "300000"
#define WATCHDOG_MS   3000

enum script {
    S_CREATE,
    S_CLAIM,
    S_SAVE,
    S_SUB,
    S_UNSUB,
    S_DELETE,
    S_NOTE_WRITE,
    S_REPLAY,
    S_REPLAY_URIS,
    S_TASK_PUT,
    S_LIST_CHANGE,
    S_TASK_GET,
    S_COUNT
};

/* The epoch check every owner write starts with (KEYS[1] = session hash, ARGV[1] = epoch). */
#define FENCE                                                                                      \
    "local e = redis.call('HGET', KEYS[1], 'epoch') "                                              \
    "if not e then return redis.error_reply('GONE') end "                                          \
    "if e ~= ARGV[1] then return redis.error_reply('STALE') end "

/* The record format: bumped when a key's type or meaning changes (2: subs became a hash of
 * URI -> subscription mark, events moved from per-session streams to per-URI streams; 3: a
 * resource event is stored and published as its facts, the URI and version, not as JSON). */
#define RECORD_V MCPGW_RDECODE_RECORD_V
/* The cluster-wide event counter: every event id is "<counter>-0" (docs/replication.md). */
#define EVSEQ_KEY "mcpgw:evseq"
/* The channel every node listens to for resource updates. */
#define EV_CHANNEL "mcpgw:ev"
/* Its messages: "upd <id> <version> <uri>" (the URI last: it may hold spaces). */
#define EV_TAG "upd "
/* ... and "lst <name>": a note was created (it joined NOTES_KEY). */
#define LST_TAG "lst "
/* ... and "tsk <JSON>": a task changed status (docs/protocol-2026.md, "Status notifications"). */
#define TSK_TAG "tsk "
/* A node-to-node message (mcpgw_store_node_send) on a node's own channel. */
#define MSG_TAG "msg "
/* The notes board's names, cluster-wide: a sorted set of name -> event counter at creation. */
#define NOTES_KEY "mcpgw:notes"
/* ... and "lch <id> <kind>": a list changed (the resource list: a note was created), with its
 * own event id; kept in LC_KEY for replays. */
#define LCH_TAG "lch "
#define LC_KEY  "mcpgw:lc"
/* The catalogue of upstream lists the cluster last announced: kind -> hash of the list (hex), so
 * that a change every node sees is one event (docs/federation.md, "Upstream notifications"). */
#define CAT_KEY "mcpgw:cat"

/* What REPLAY and REPLAY_URIS share, composed into both at build time: the events they collect
 * in `out` and the reply built from them. ARGV[2] is the most events read from one stream.
 *   uri_events(uri, from): the URI's resource events after counter value `from` (entries of an
 *     older format, without a version, are skipped);
 *   list_events(from, kind): the list changes after `from`, of one kind or (nil) of every kind,
 *     each named "\1<kind>" with version 0;
 *   reply(): the event counter now, then id, name, version of each event in counter order.
 * Ids stay strings: Lua would print a large number in exponent form. */
#define REPLAY_LIB                                                                                 \
    "local out = {} "                                                                              \
    "local function uri_events(uri, from) "                                                        \
    "  for _, e in ipairs(redis.call('XRANGE', 'mcpgw:u:' .. uri, '(' .. from .. '-0', '+', "      \
    "      'COUNT', ARGV[2])) do "                                                                 \
    "    if e[2][1] == 'v' then "                                                                  \
    "      out[#out + 1] = {tonumber(string.match(e[1], '^%d+')), e[1], uri, e[2][2]} end "        \
    "  end "                                                                                       \
    "end "                                                                                         \
    "local function list_events(from, kind) "                                                      \
    "  for _, e in ipairs(redis.call('XRANGE', '" LC_KEY "', '(' .. from .. '-0', '+', "           \
    "      'COUNT', ARGV[2])) do "                                                                 \
    "    if e[2][1] == 'l' and (not kind or e[2][2] == kind) then "                                \
    "      out[#out + 1] = {tonumber(string.match(e[1], '^%d+')), e[1], '\1' .. e[2][2], '0'} "    \
    "end "                                                                                         \
    "  end "                                                                                       \
    "end "                                                                                         \
    "local function reply() "                                                                      \
    "  table.sort(out, function(a, b) return a[1] < b[1] end) "                                    \
    "  local r = {redis.call('GET', '" EVSEQ_KEY "') or '0'} "                                     \
    "  for _, e in ipairs(out) do r[#r + 1] = e[2] r[#r + 1] = e[3] r[#r + 1] = e[4] end "         \
    "  return r "                                                                                  \
    "end "

static const char *const scripts[S_COUNT] = {
    /* CREATE: KEYS s; ARGV ttl, then field/value pairs */
    "redis.call('HSET', KEYS[1], unpack(ARGV, 2)) "
    "redis.call('PEXPIRE', KEYS[1], ARGV[1]) return 1",
    /* CLAIM: KEYS s, subs; ARGV node, ttl, sid, principal ("" = any). A session bound to another
     * principal is left where it is: a request with a stolen id must not move it. */
    "if redis.call('EXISTS', KEYS[1]) == 0 then return false end "
    "if ARGV[4] ~= '' and redis.call('HGET', KEYS[1], 'pr') ~= ARGV[4] then "
    "  return redis.status_reply('FOREIGN') end "
    "local prev = redis.call('HGET', KEYS[1], 'owner') "
    "local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1) "
    "redis.call('HSET', KEYS[1], 'owner', ARGV[1]) "
    "for i = 1, 2 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end "
    "if prev and prev ~= ARGV[1] then "
    "  redis.call('PUBLISH', 'mcpgw:node:' .. prev, 'moved ' .. ARGV[3] .. ' ' .. epoch) end "
    "return {redis.call('HGETALL', KEYS[1]), redis.call('HKEYS', KEYS[2])}",
    /* SAVE: KEYS s; ARGV epoch, field/value pairs */
    FENCE "redis.call('HSET', KEYS[1], unpack(ARGV, 2)) return 1",
    /* SUB: KEYS s, subs, event counter; ARGV epoch, uri, ttl. The mark is the last event id
     * when the subscription began: a replay never goes further back for this URI. A repeated
     * subscribe keeps the first mark. */
    FENCE "redis.call('HSETNX', KEYS[2], ARGV[2], redis.call('GET', KEYS[3]) or '0') "
          "redis.call('PEXPIRE', KEYS[2], ARGV[3]) return 1",
    /* UNSUB: KEYS s, subs; ARGV epoch, uri */
    FENCE "redis.call('HDEL', KEYS[2], ARGV[2]) return 1",
    /* DELETE: KEYS s, subs; ARGV epoch */
    FENCE "redis.call('DEL', KEYS[1], KEYS[2]) return 1",
    /* NOTE_WRITE: KEYS note, the URI's event stream, event counter, the notes list, the
     * list-changes stream; ARGV text,
     * the URI, the name. The write, the event and its broadcast are one atomic step, O(1)
     * whatever the number of subscribers: every node tells its own subscribers, and a resume
     * replays it from the URI's stream. The event is its facts (the version); each node builds
     * the notification. A name new to the list (a new note, or one written before the list
     * existed) is announced to every node ("lst"), which tells its sessions. */
    "local g = redis.call('INCR', KEYS[3]) "
    /* the counter behind the stream (restored without it): continue after the stream */
    "local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1] "
    "if last then "
    "  local l = tonumber(string.match(last[1], '^%d+')) "
    "  if l >= g then g = l + 1 redis.call('SET', KEYS[3], g) end "
    "end "
    "local v = redis.call('HINCRBY', KEYS[1], 'version', 1) "
    "redis.call('HSET', KEYS[1], 'text', ARGV[1]) "
    "local id = g .. '-0' "
    "local lc = nil "
    "if redis.call('ZADD', KEYS[4], 'NX', g, ARGV[3]) == 1 then "
    "  redis.call('PUBLISH', '" EV_CHANNEL "', '" LST_TAG "' .. ARGV[3]) "
    "  lc = redis.call('INCR', KEYS[3]) "
    "end "
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', " EV_MAXLEN ", id, 'v', v) "
    "redis.call('PUBLISH', '" EV_CHANNEL "', '" EV_TAG "' .. id .. ' ' .. v .. ' ' .. ARGV[2]) "
    /* The resource list changed: an event of its own, next in the counter's order, kept in the
     * list-changes stream so that a listen stream's replay brings it back (docs/listen.md). */
    "if lc then "
    "  local ll = redis.call('XREVRANGE', KEYS[5], '+', '-', 'COUNT', 1)[1] "
    "  if ll then "
    "    local l = tonumber(string.match(ll[1], '^%d+')) "
    "    if l >= lc then lc = l + 1 redis.call('SET', KEYS[3], lc) end "
    "  end "
    "  redis.call('XADD', KEYS[5], 'MAXLEN', '~', " EV_MAXLEN ", lc .. '-0', 'l', 'resources') "
    "  redis.call('PUBLISH', '" EV_CHANNEL "', '" LCH_TAG "' .. lc .. '-0 resources') "
    "end "
    "return v",
    /* REPLAY: KEYS subs, s; ARGV after (an event counter value), count. The event counter now,
     * then the events of every subscribed URI after max(after, the subscription's mark), and
     * the list changes after max(after, the session's list mark `lcm`; none without one),
     * merged in counter order (REPLAY_LIB's reply). Reads the counter and the URI streams by
     * name: a single Redis instance (docs/replication.md). */
    REPLAY_LIB "local subs = redis.call('HGETALL', KEYS[1]) "
               "local lcm = redis.call('HGET', KEYS[2], 'lcm') "
               "if lcm then "
               "  local from = ARGV[1] "
               "  if (tonumber(lcm) or 0) > tonumber(from) then from = lcm end "
               "  list_events(from, nil) "
               "end "
               "for i = 1, #subs, 2 do "
               "  local from = ARGV[1] "
               "  if (tonumber(subs[i + 1]) or 0) > tonumber(from) then from = subs[i + 1] end "
               "  uri_events(subs[i], from) "
               "end "
               "return reply()",
    /* REPLAY_URIS: ARGV after (an event counter value), count, the URIs joined by newlines
     * (a URI holds none). As REPLAY for a listen stream, which has no record: the same reply.
     * A line "\1<kind>" (MCPGW_STORE_LIST_PREFIX: no URI holds a control byte) asks for that
     * list's changes, replied as events of that name, version 0. */
    REPLAY_LIB "for uri in string.gmatch(ARGV[3], '[^\\n]+') do "
               "  if string.byte(uri, 1) == 1 then list_events(ARGV[1], string.sub(uri, 2)) "
               "  else uri_events(uri, ARGV[1]) end "
               "end "
               "return reply()",
    /* TASK_PUT: KEYS task; ARGV status ('' keeps), owner, lease (ms from now, by Redis's
     * clock), rec ('' keeps), ttl ('0': only over an existing record), expected owner ('' any),
     * expected version ('0' any), note ('' none). A terminal state is written once; a write of
     * rec bumps the version; a change of status publishes the note. 0 when refused. */
    "local cur = redis.call('HMGET', KEYS[1], 'st', 'own', 'ver') "
    "if not cur[1] then if ARGV[5] == '0' then return 0 end "
    "elseif cur[1] == 'completed' or cur[1] == 'failed' or cur[1] == 'cancelled' then return 0 "
    "elseif ARGV[6] ~= '' and cur[2] ~= ARGV[6] then return 0 "
    "elseif ARGV[7] ~= '0' and (cur[3] or '0') ~= ARGV[7] then return 0 end "
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "redis.call('HSET', KEYS[1], 'v', '1', 'own', ARGV[2], 'lease', "
    "  string.format('%.0f', now + tonumber(ARGV[3]))) "
    "if ARGV[4] ~= '' then "
    "  redis.call('HSET', KEYS[1], 'rec', ARGV[4]) "
    "  redis.call('HINCRBY', KEYS[1], 'ver', 1) end "
    "if ARGV[1] ~= '' then "
    "  redis.call('HSET', KEYS[1], 'st', ARGV[1]) "
    "  if cur[1] and cur[1] ~= ARGV[1] and ARGV[8] ~= '' then "
    "    redis.call('PUBLISH', '" EV_CHANNEL "', '" TSK_TAG "' .. ARGV[8]) end "
    "end "
    "if ARGV[5] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end "
    "return 1",
    /* LIST_CHANGE: KEYS event counter, the list-changes stream, the catalogue hashes; ARGV kind,
     * hash of the list as the caller now has it. Every node sees an upstream's list change on
     * its own upstream session and computes the same list: the first to report a list the
     * cluster has not announced yet records it (an event of its own, kept for replays, sent to
     * every node as "lch"); the others find their list announced and record nothing (0). */
    "if redis.call('HGET', KEYS[3], ARGV[1]) == ARGV[2] then return 0 end "
    "redis.call('HSET', KEYS[3], ARGV[1], ARGV[2]) "
    "local g = redis.call('INCR', KEYS[1]) "
    "local ll = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1] "
    "if ll then "
    "  local l = tonumber(string.match(ll[1], '^%d+')) "
    "  if l >= g then g = l + 1 redis.call('SET', KEYS[1], g) end "
    "end "
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', " EV_MAXLEN ", g .. '-0', 'l', ARGV[1]) "
    "redis.call('PUBLISH', '" EV_CHANNEL "', '" LCH_TAG "' .. g .. '-0 ' .. ARGV[1]) "
    "return g",
    /* TASK_GET: KEYS task. {status, owner, lease left in ms (Redis's clock; 0: run out), rec,
     * version}; status false when there is no record. */
    "local r = redis.call('HMGET', KEYS[1], 'st', 'own', 'lease', 'rec', 'ver') "
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local left = (tonumber(r[3] or '0') or 0) - now "
    "if left < 0 then left = 0 end "
    "r[3] = string.format('%.0f', left) "
    "r[5] = r[5] or '0' "
    "return r",
};

#endif
