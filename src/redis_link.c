/* SPDX-License-Identifier: MIT */
/* A worker's link to Redis or a Redis Cluster (see redis_link.h). */
#define _POSIX_C_SOURCE 200809L

#include "redis_link.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "redis_reply.h"
#include "redis_slot.h"
#include "sock.h"

#define REDIS_SERVERS_MAX 64  /* masters (and seeds) a link knows */
#define REDIS_REDIRECTS_MAX 5 /* MOVED/ASK hops for one command */
#define REDIS_NO_SERVER (-1)

struct redis_link;

/* One server: the plain one, or a seed or master of a cluster. */
struct redis_server {
    struct redis_link *link;
    char host[INET6_ADDRSTRLEN];
    uint16_t port;
    redisAsyncContext *ac; /* NULL: not connected (opened on the next command) */
    /* AUTH or SELECT was refused on this connection: what Redis said, given to callers
     * instead of the NOAUTH their commands then get (which reads as if no password were
     * configured). "" when none. */
    char setup_error[128];
};

/* A command on its way. Freed once the caller was answered and hiredis has no callback
 * for it left. */
struct redis_cmd {
    struct redis_link *link;
    redis_reply_fn cb; /* NULL for the link's own (CLUSTER SLOTS) */
    void *ctx;
    struct event timer; /* the caller's deadline */
    int slot;           /* -1: not about a key (goes to `to`) */
    int to;             /* server index it went to, or REDIS_NO_SERVER */
    uint8_t redirects;
    bool answered;     /* the caller heard (or the link is being freed: never will) */
    bool waiting_map;  /* parked until CLUSTER SLOTS answers */
    unsigned inflight; /* hiredis callbacks still to come */
    int argc;
    char **argv; /* owns: one block with argvlen and the bytes */
    size_t *argvlen;
    struct redis_cmd *prev, *next; /* the link's live commands */
};

struct redis_link {
    struct event_base *base;
    /* The configuration it was made for, copied. */
    struct cfg_addr *addrs;
    size_t naddrs;
    bool cluster;
    char *password;
    uint32_t db;
    uint32_t timeout_ms;

    struct redis_server servers[REDIS_SERVERS_MAX]; /* the seeds first */
    unsigned nservers;
    int8_t slot_server[REDIS_SLOTS]; /* cluster: master index per slot, or -1 */
    bool map_known;
    struct redis_cmd *map_cmd; /* the CLUSTER SLOTS in flight, or NULL */
    unsigned map_next_seed;    /* where the next CLUSTER SLOTS goes, round-robin */

    struct redis_cmd *cmds; /* live commands */
    bool freeing;
    char last_error[160];
};

_Static_assert(REDIS_SERVERS_MAX <= 127, "slot_server holds server indexes in int8_t");

static void cmd_dispatch(struct redis_cmd *c);
static void map_refresh(struct redis_link *l);

static void link_error(struct redis_link *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Keeps what went wrong last, for /status and for the caller's "why". */
static void
link_error(struct redis_link *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->last_error, sizeof(l->last_error), fmt, ap);
    va_end(ap);
}

/* ---- commands ---- */

static void
cmd_free(struct redis_cmd *c)
{
    struct redis_link *l = c->link;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->cmds = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (l->map_cmd == c)
        l->map_cmd = NULL;
    event_del(&c->timer);
    free(c->argv);
    free(c);
}

/* The caller hears `reply` (or NULL and `why`); the command lives on while hiredis still
 * owes it a callback. */
static void
cmd_answer(struct redis_cmd *c, const redisReply *reply, const char *why)
{
    if (c->answered)
        return;
    c->answered = true;
    c->waiting_map = false;
    event_del(&c->timer);
    if (c->cb && !c->link->freeing)
        c->cb(c->ctx, reply, why);
    if (c->inflight == 0)
        cmd_free(c);
}

/* ---- connections ---- */

static struct redis_server *
server_of(const redisAsyncContext *ac)
{
    return (struct redis_server *)ac->data;
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
    struct redis_server *s = server_of(ac);
    if (status != REDIS_OK) {
        char where[INET6_ADDRSTRLEN + 8];
        snprintf(where, sizeof(where), "%s:%u", s->host, s->port);
        link_error(s->link, "connect to %s: %s", where, ac->errstr);
        /* hiredis frees the context after this callback, failing what was queued. */
        if (s->ac == ac)
            s->ac = NULL;
        /* A master that refuses may have been replaced by its replica: ask for the map
         * again (or the slot stays on the dead one for good). */
        if (s->link->cluster)
            s->link->map_known = false;
    }
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis_server *s = server_of(ac);
    if (status != REDIS_OK && !s->link->freeing) {
        char where[INET6_ADDRSTRLEN + 8];
        snprintf(where, sizeof(where), "%s:%u", s->host, s->port);
        link_error(s->link, "connection to %s lost: %s", where, ac->errstr);
    }
    if (s->ac == ac)
        s->ac = NULL;
    if (s->link->cluster && !s->link->freeing)
        s->link->map_known = false; /* a master may have failed over: ask again */
}

static void
on_setup_reply(redisAsyncContext *ac, void *r, void *priv)
{
    const redisReply *reply = r;
    const char *what = priv;
    struct redis_server *s = server_of(ac);
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR && !s->link->freeing) {
        char where[INET6_ADDRSTRLEN + 8];
        snprintf(where, sizeof(where), "%s:%u", s->host, s->port);
        snprintf(s->setup_error, sizeof(s->setup_error), "%s refused by %s: %s", what, where,
                 reply->str);
        link_error(s->link, "%s", s->setup_error);
    }
}

/* Drops the server's connection: hiredis fails what is queued on it (the callbacks run
 * before this returns, or after the current callback when called from one). */
static void
server_drop(struct redis_server *s)
{
    redisAsyncContext *ac = s->ac;
    if (ac == NULL)
        return;
    s->ac = NULL;
    redisAsyncFree(ac);
}

/* The server's connection, opened (with AUTH and SELECT queued first) when there is none.
 * NULL when it cannot even be started. */
static redisAsyncContext *
server_conn(struct redis_server *s)
{
    struct redis_link *l = s->link;
    if (s->ac != NULL)
        return s->ac;
    redisAsyncContext *ac = redisAsyncConnect(s->host, s->port);
    if (ac == NULL) {
        link_error(l, "connect to %s: out of memory", s->host);
        return NULL;
    }
    if (ac->err) {
        link_error(l, "connect to %s: %s", s->host, ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = s;
    s->setup_error[0] = '\0';
    if (redisLibeventAttach(ac, l->base) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    s->ac = ac;
    if (l->password)
        redisAsyncCommand(ac, on_setup_reply, (void *)"AUTH", "AUTH %s", l->password);
    if (l->db != 0)
        redisAsyncCommand(ac, on_setup_reply, (void *)"SELECT", "SELECT %u", (unsigned)l->db);
    return ac;
}

/* The index of the server at host:port, added when new. -1 when the table is full. */
static int
server_find(struct redis_link *l, const char *host, size_t hlen, uint16_t port)
{
    for (unsigned i = 0; i < l->nservers; i++)
        if (l->servers[i].port == port && strlen(l->servers[i].host) == hlen &&
            memcmp(l->servers[i].host, host, hlen) == 0)
            return (int)i;
    if (l->nservers == REDIS_SERVERS_MAX || hlen >= INET6_ADDRSTRLEN)
        return -1;
    struct redis_server *s = &l->servers[l->nservers];
    memcpy(s->host, host, hlen);
    s->host[hlen] = '\0';
    s->port = port;
    s->link = l;
    s->ac = NULL;
    return (int)l->nservers++;
}

/* ---- replies ---- */

static void on_reply(redisAsyncContext *ac, void *r, void *priv);

/* Queue the command on server `to`. Answers the caller itself when it cannot. */
static void
cmd_send(struct redis_cmd *c, int to)
{
    struct redis_link *l = c->link;
    redisAsyncContext *ac = to >= 0 ? server_conn(&l->servers[to]) : NULL;
    c->to = to;
    if (ac == NULL) {
        cmd_answer(c, NULL, l->last_error[0] ? l->last_error : "cannot connect");
        return;
    }
    if (redisAsyncCommandArgv(ac, on_reply, c, c->argc, (const char **)c->argv, c->argvlen) !=
        REDIS_OK) {
        cmd_answer(c, NULL, "connection closing");
        return;
    }
    c->inflight++;
}

static void
on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    const redisReply *reply = r;
    struct redis_cmd *c = priv;
    struct redis_link *l = c->link;
    (void)ac;
    c->inflight--;
    if (c->answered || l->freeing) {
        if (c->inflight == 0 && (c->answered || l->freeing))
            cmd_free(c);
        return;
    }
    if (reply == NULL) {
        cmd_answer(c, NULL, l->last_error[0] ? l->last_error : "connection lost");
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR && l->cluster && c->slot >= 0 &&
        c->redirects < REDIS_REDIRECTS_MAX) {
        bool ask;
        uint16_t slot, port;
        const char *host;
        size_t hlen;
        if (redis_parse_redirect(reply->str, reply->len, &ask, &slot, &host, &hlen, &port) == 0) {
            char ip[INET6_ADDRSTRLEN];
            unsigned char bin[sizeof(struct in6_addr)];
            if (hlen == 0 && c->to >= 0) { /* ":port": the host that answered */
                host = l->servers[c->to].host;
                hlen = strlen(host);
            }
            int to = -1;
            if (hlen > 0 && hlen < sizeof(ip)) {
                memcpy(ip, host, hlen);
                ip[hlen] = '\0';
                /* An address, not a name: we look nothing up. */
                if (inet_pton(AF_INET, ip, bin) == 1 || inet_pton(AF_INET6, ip, bin) == 1)
                    to = server_find(l, ip, hlen, port);
            }
            if (to < 0) {
                cmd_answer(c, NULL, "redirected to an unusable address");
                return;
            }
            c->redirects++;
            if (!ask) {
                l->slot_server[slot] = (int8_t)to;
                l->map_known = false; /* other slots probably moved too */
            } else {
                redisAsyncContext *tac = server_conn(&l->servers[to]);
                if (tac != NULL)
                    redisAsyncCommand(tac, NULL, NULL, "ASKING");
            }
            cmd_send(c, to);
            return;
        }
    }
    if (reply->type == REDIS_REPLY_ERROR && c->to >= 0 && l->servers[c->to].setup_error[0]) {
        cmd_answer(c, NULL, l->servers[c->to].setup_error); /* why, not NOAUTH */
        return;
    }
    cmd_answer(c, reply, NULL);
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct redis_cmd *c = arg;
    struct redis_link *l = c->link;
    (void)fd;
    (void)what;
    int to = c->to;
    bool parked = c->waiting_map;
    cmd_answer(c, NULL, "timeout"); /* may free c */
    /* Replies come in order: a connection whose command is this late holds up every
     * command behind it. Drop it; the next command opens another. */
    if (to >= 0 && !parked) {
        char where[INET6_ADDRSTRLEN + 8];
        snprintf(where, sizeof(where), "%s:%u", l->servers[to].host, l->servers[to].port);
        link_error(l, "%s did not answer within the timeout", where);
        server_drop(&l->servers[to]);
    }
    if (l->cluster)
        l->map_known = false;
}

/* The caller's deadline: the link's timeout from now. */
static void
cmd_arm_deadline(struct redis_cmd *c)
{
    struct redis_link *l = c->link;
    struct timeval tv = {l->timeout_ms / 1000, (suseconds_t)(l->timeout_ms % 1000) * 1000};
    evtimer_assign(&c->timer, l->base, on_timeout, c);
    evtimer_add(&c->timer, &tv);
}

/* ---- the cluster's map ---- */

/* redis_reply_slot_map()'s lookup: a master the map names, as the index of its server (added
 * when new). No address (a NULL or empty endpoint) is the server the CLUSTER SLOTS went to,
 * which is map_cmd's until on_map() returns. */
static int
map_server(void *ctx, const char *ip, size_t len, uint16_t port)
{
    struct redis_link *l = ctx;
    if (len == 0) {
        if (l->map_cmd == NULL || l->map_cmd->to < 0)
            return -1;
        ip = l->servers[l->map_cmd->to].host;
        len = strlen(ip);
    }
    return server_find(l, ip, len, port);
}

static void
on_map(void *ctx, const redisReply *reply, const char *why)
{
    struct redis_link *l = ctx;
    char cause[sizeof(l->last_error)];
    snprintf(cause, sizeof(cause), "%s", why ? why : ""); /* why may be l->last_error */
    /* A reply of the wrong shape leaves the map whole: stale, it still sends commands to the
     * masters we are connected to (cmd_dispatch()) until a good one comes. */
    if (reply != NULL && reply->type != REDIS_REPLY_ERROR &&
        redis_reply_slot_map(reply, map_server, l, l->slot_server) == 0) {
        l->map_known = true;
    } else {
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
            link_error(l, "CLUSTER SLOTS refused: %s", reply->str);
        else if (reply != NULL)
            link_error(l, "CLUSTER SLOTS: an answer of the wrong shape");
        else
            link_error(l, "CLUSTER SLOTS: %s", cause);
    }
    /* The parked commands go now, or hear why not. */
    struct redis_cmd *c = l->cmds, *next;
    for (; c; c = next) {
        next = c->next;
        if (!c->waiting_map || c->answered)
            continue;
        c->waiting_map = false;
        if (l->map_known)
            cmd_dispatch(c);
        else
            cmd_answer(c, NULL, l->last_error);
    }
}

static struct redis_cmd *cmd_new(struct redis_link *l, int argc, const char *const *argv,
                                 const size_t *argvlen, redis_reply_fn cb, void *ctx);

/* Asks a server for the map, unless a question is already out: a connected master when
 * there is one, else the seeds and known servers in turn. */
static void
map_refresh(struct redis_link *l)
{
    if (l->map_cmd != NULL)
        return;
    static const char *const argv[] = {"CLUSTER", "SLOTS"};
    static const size_t argvlen[] = {7, 5};
    struct redis_cmd *c = cmd_new(l, 2, argv, argvlen, on_map, l);
    if (c == NULL)
        return;
    int to = -1;
    for (unsigned i = 0; i < l->nservers && to < 0; i++)
        if (l->servers[i].ac != NULL)
            to = (int)i;
    if (to < 0)
        to = (int)(l->map_next_seed++ % l->nservers);
    l->map_cmd = c;
    cmd_send(c, to);
}

/* ---- sending ---- */

static struct redis_cmd *
cmd_new(struct redis_link *l, int argc, const char *const *argv, const size_t *argvlen,
        redis_reply_fn cb, void *ctx)
{
    size_t bytes = 0;
    for (int i = 0; i < argc; i++)
        bytes += argvlen[i];
    struct redis_cmd *c = calloc(1, sizeof(*c));
    char *block = malloc((size_t)argc * (sizeof(char *) + sizeof(size_t)) + bytes + 1);
    if (c == NULL || block == NULL) {
        free(c);
        free(block);
        return NULL;
    }
    c->argv = (char **)block;
    c->argvlen = (size_t *)(block + (size_t)argc * sizeof(char *));
    char *p = block + (size_t)argc * (sizeof(char *) + sizeof(size_t));
    for (int i = 0; i < argc; i++) {
        memcpy(p, argv[i], argvlen[i]);
        c->argv[i] = p;
        c->argvlen[i] = argvlen[i];
        p += argvlen[i];
    }
    c->argc = argc;
    c->link = l;
    c->cb = cb;
    c->ctx = ctx;
    c->slot = -1;
    c->to = REDIS_NO_SERVER;
    cmd_arm_deadline(c);
    c->next = l->cmds;
    if (l->cmds)
        l->cmds->prev = c;
    l->cmds = c;
    return c;
}

/* Sends a command about a key to the server that holds its slot. */
static void
cmd_dispatch(struct redis_cmd *c)
{
    struct redis_link *l = c->link;
    if (!l->cluster) {
        cmd_send(c, 0);
        return;
    }
    int to = l->slot_server[c->slot];
    if (!l->map_known) {
        map_refresh(l); /* stale: ask again */
        /* Meanwhile a master we are connected to still serves; one we are not (it
         * refused, or the connection broke: a failover under way) waits for the map. */
        if (to >= 0 && l->servers[to].ac == NULL)
            to = -1;
    }
    if (to >= 0) {
        cmd_send(c, to);
        return;
    }
    if (l->map_cmd != NULL) {
        c->waiting_map = true; /* on_map() sends it */
        return;
    }
    char why[48];
    snprintf(why, sizeof(why), "no master for slot %d", c->slot);
    cmd_answer(c, NULL, why);
}

/* The caller must not be called back from inside redis_link_command(): answers that are
 * known at once (no connection, no master) wait for the next loop turn. */
static void
on_deferred(evutil_socket_t fd, short what, void *arg)
{
    struct redis_cmd *c = arg;
    (void)fd;
    (void)what;
    cmd_arm_deadline(c);
    cmd_dispatch(c);
}

int
redis_link_command(struct redis_link *l, const char *key, size_t keylen, int argc,
                   const char *const *argv, const size_t *argvlen, redis_reply_fn cb, void *ctx)
{
    struct redis_cmd *c = cmd_new(l, argc, argv, argvlen, cb, ctx);
    if (c == NULL)
        return -1;
    c->slot = redis_key_slot(key, keylen);
    /* One tick later: a failure to connect or a missing master answers the caller from
     * the loop, never from inside this call. The deadline timer fires at once for this
     * and is armed with the deadline by on_deferred(). */
    event_del(&c->timer);
    evtimer_assign(&c->timer, l->base, on_deferred, c);
    struct timeval now = {0, 0};
    evtimer_add(&c->timer, &now);
    return 0;
}

/* ---- the link ---- */

struct redis_link *
redis_link_new(struct event_base *base, const struct cfg_redis *cfg)
{
    struct redis_link *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->base = base;
    l->addrs = calloc(cfg->naddrs ? cfg->naddrs : 1, sizeof(*l->addrs));
    l->password = cfg->password ? strdup(cfg->password) : NULL;
    if (l->addrs == NULL || (cfg->password && l->password == NULL)) {
        free(l->addrs);
        free(l->password);
        free(l);
        return NULL;
    }
    memcpy(l->addrs, cfg->addrs, cfg->naddrs * sizeof(*l->addrs));
    l->naddrs = cfg->naddrs;
    l->cluster = cfg->cluster;
    l->db = cfg->db;
    l->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : CFG_DEFAULT_REDIS_TIMEOUT_MS;
    memset(l->slot_server, REDIS_NO_SERVER, sizeof(l->slot_server));
    for (size_t i = 0; i < cfg->naddrs && l->nservers < REDIS_SERVERS_MAX; i++) {
        char host[INET6_ADDRSTRLEN];
        const struct sockaddr *sa = (const struct sockaddr *)&cfg->addrs[i].sa;
        uint16_t port;
        if (sa->sa_family == AF_INET) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
            inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
            port = ntohs(sin->sin_port);
        } else {
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
            inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
            port = ntohs(sin6->sin6_port);
        }
        server_find(l, host, strlen(host), port);
    }
    return l;
}

void
redis_link_free(struct redis_link *l)
{
    if (l == NULL)
        return;
    l->freeing = true;
    for (unsigned i = 0; i < l->nservers; i++)
        server_drop(&l->servers[i]); /* hiredis's callbacks free what they held */
    while (l->cmds) {
        struct redis_cmd *c = l->cmds;
        c->answered = true;
        c->inflight = 0;
        cmd_free(c);
    }
    free(l->addrs);
    free(l->password);
    free(l);
}

bool
redis_link_same(const struct redis_link *l, const struct cfg_redis *cfg)
{
    if (l->naddrs != cfg->naddrs || l->cluster != cfg->cluster || l->db != cfg->db ||
        l->timeout_ms != cfg->timeout_ms)
        return false;
    if ((l->password == NULL) != (cfg->password == NULL) ||
        (l->password && strcmp(l->password, cfg->password) != 0))
        return false;
    for (size_t i = 0; i < l->naddrs; i++)
        if (l->addrs[i].salen != cfg->addrs[i].salen ||
            memcmp(&l->addrs[i].sa, &cfg->addrs[i].sa, l->addrs[i].salen) != 0)
            return false;
    return true;
}

void
redis_link_state(const struct redis_link *l, struct redis_link_state *out)
{
    out->connected = 0;
    for (unsigned i = 0; i < l->nservers; i++)
        out->connected += l->servers[i].ac != NULL;
    out->servers = l->nservers;
    out->cluster = l->cluster;
    out->last_error = l->last_error;
}
