/* SPDX-License-Identifier: MIT */
/* Admin HTTP endpoint. Requests are parsed with the same strict parser as the proxy. */
#include "admin.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cfg.h"
#include "h1_parse.h"
#include "log.h"
#include "metrics.h"
#include "privileges.h"
#include "server.h"
#include "sock.h"
#include "status.h"

#define ADMIN_REQ_MAX 8192
#define ADMIN_TIMEOUT_S 10
#define ADMIN_ACCEPT_BACKOFF_MS 100

struct admin {
    int fd;
    struct cfg_addr addr;
    struct server *srv; /* borrows */
    struct event *ev;   /* owns */
    struct event *resume_ev; /* owns: accepting again after running out of descriptors */
};

struct admin_conn {
    int fd;
    struct admin *admin; /* borrows */
    struct event *ev;    /* owns */
    char *resp;          /* owns */
    size_t resp_len, resp_off;
    bool head;           /* a HEAD request: the answer's head only */
    size_t len;
    char req[ADMIN_REQ_MAX];
};

static void
admin_conn_free(struct admin_conn *ac)
{
    if (ac->ev)
        event_free(ac->ev);
    close(ac->fd);
    free(ac->resp);
    free(ac);
}

static void admin_conn_write_cb(evutil_socket_t fd, short what, void *arg);

static void
admin_respond(struct admin_conn *ac, int status, const char *ctype, const char *body)
{
    size_t blen = strlen(body);
    size_t cap = blen + 256;
    ac->resp = malloc(cap);
    if (!ac->resp) {
        admin_conn_free(ac);
        return;
    }
    int n = snprintf(ac->resp, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
                     status, h1_status_reason(status), ctype, blen,
                     status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (ac->head)
        blen = 0;
    memcpy(ac->resp + n, body, blen);
    ac->resp_len = (size_t)n + blen;
    struct event_base *base = event_get_base(ac->ev);
    event_free(ac->ev);
    ac->ev = event_new(base, ac->fd, EV_WRITE | EV_PERSIST, admin_conn_write_cb, ac);
    struct timeval tv = {ADMIN_TIMEOUT_S, 0};
    if (!ac->ev || event_add(ac->ev, &tv) < 0)
        admin_conn_free(ac);
}

static void
admin_conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct admin_conn *ac = arg;
    if (what & EV_TIMEOUT) {
        admin_conn_free(ac);
        return;
    }
    while (ac->resp_off < ac->resp_len) {
        ssize_t n = write(fd, ac->resp + ac->resp_off, ac->resp_len - ac->resp_off);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            admin_conn_free(ac);
            return;
        }
        ac->resp_off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    admin_conn_free(ac);
}

/* /route?ip=ADDR: why a client at ADDR goes where it goes. The address is the query's
 * `ip` parameter, taken literally (IPv6 colons may come percent-encoded as %3A). */
static void
admin_route(struct admin_conn *ac, struct span query)
{
    char ip[64];
    size_t len = 0;
    bool found = false;
    const char *p = query.ptr, *end = query.ptr + query.len;
    while (p && p < end && !found) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if (stop - p >= 3 && memcmp(p, "ip=", 3) == 0) {
            found = true;
            for (const char *q = p + 3; q < stop && len < sizeof(ip) - 1; q++) {
                if (*q == '%' && stop - q >= 3 && (q[1] == '3') && (q[2] == 'A' || q[2] == 'a')) {
                    ip[len++] = ':';
                    q += 2;
                } else {
                    ip[len++] = *q;
                }
            }
        }
        p = amp ? amp + 1 : NULL;
    }
    if (!found || len == 0) {
        admin_respond(ac, 400, "application/json",
                      "{\"error\":\"expected /route?ip=ADDR\"}\n");
        return;
    }
    struct cfg *cfg = server_current_cfg(ac->admin->srv);
    int status = 200;
    char *json = status_route_json(cfg, ip, len, &status);
    server_release_cfg(cfg);
    if (!json) {
        admin_respond(ac, 503, "text/plain", "out of memory\n");
        return;
    }
    admin_respond(ac, status, "application/json", json);
    free(json);
}

static void
admin_handle(struct admin_conn *ac, const struct h1_request *req)
{
    struct server *srv = ac->admin->srv;
    ac->head = req->method_id == H1_METHOD_HEAD;
    if (req->method_id != H1_METHOD_GET && !ac->head) {
        admin_respond(ac, 405, "text/plain", "method not allowed\n");
        return;
    }
    struct span path = req->path, query = {NULL, 0};
    for (size_t i = 0; i < path.len; i++) {
        if (path.ptr[i] == '?') {
            query = (struct span){path.ptr + i + 1, path.len - i - 1};
            path.len = i;
            break;
        }
    }
    if (SPAN_EQ_LIT(path, "/healthz")) {
        if (server_is_stopping(srv))
            admin_respond(ac, 503, "text/plain", "stopping\n");
        else
            admin_respond(ac, 200, "text/plain", "ok\n");
    } else if (SPAN_EQ_LIT(path, "/status")) {
        char *json = server_status_json(srv);
        if (!json) {
            admin_respond(ac, 503, "text/plain", "out of memory\n");
            return;
        }
        admin_respond(ac, 200, "application/json", json);
        free(json);
    } else if (SPAN_EQ_LIT(path, "/metrics")) {
        char *text = metrics_render(srv);
        if (!text) {
            admin_respond(ac, 503, "text/plain", "out of memory\n");
            return;
        }
        admin_respond(ac, 200, METRICS_CONTENT_TYPE, text);
        free(text);
    } else if (SPAN_EQ_LIT(path, "/route")) {
        admin_route(ac, query);
    } else {
        admin_respond(ac, 404, "text/plain", "not found\n");
    }
}

static void
admin_conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct admin_conn *ac = arg;
    if (what & EV_TIMEOUT) {
        admin_conn_free(ac);
        return;
    }
    ssize_t n = read(fd, ac->req + ac->len, sizeof(ac->req) - ac->len);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n <= 0) {
        admin_conn_free(ac);
        return;
    }
    ac->len += (size_t)n;
    struct h1_header headers[64];
    struct h1_limits limits = {sizeof(ac->req), 64};
    struct h1_request req;
    int r = h1_parse_request(ac->req, ac->len, &limits, headers, &req);
    if (r == H1_PARTIAL)
        return;
    if (r == H1_INVALID) {
        admin_respond(ac, req.error_status ? req.error_status : 400, "text/plain",
                      "bad request\n");
        return;
    }
    admin_handle(ac, &req);
}

static void
admin_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct admin *admin = arg;
    event_add(admin->ev, NULL);
}

static void
admin_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    struct admin *admin = arg;
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* The connection stays queued and the socket readable: without a pause
                 * this callback would spin. */
                struct timeval tv = {0, ADMIN_ACCEPT_BACKOFF_MS * 1000};
                event_del(admin->ev);
                event_add(admin->resume_ev, &tv);
            }
            return;
        }
        struct admin_conn *ac = calloc(1, sizeof(*ac));
        if (!ac) {
            close(fd);
            return;
        }
        ac->fd = fd;
        ac->admin = admin;
        ac->ev = event_new(event_get_base(admin->ev), fd, EV_READ | EV_PERSIST,
                           admin_conn_read_cb, ac);
        struct timeval tv = {ADMIN_TIMEOUT_S, 0};
        if (!ac->ev || event_add(ac->ev, &tv) < 0) {
            if (ac->ev)
                event_free(ac->ev);
            close(fd);
            free(ac);
        }
    }
}

static struct admin *
admin_open(struct event_base *base, struct server *srv, const struct cfg *cfg)
{
    char err[256], note[512];
    int fd = sock_listen(&cfg->admin, false, err, sizeof(err));
    if (fd < 0) {
        log_error("admin listener: %s%s", err, privileges_bind_note(errno, note, sizeof(note)));
        return NULL;
    }
    struct admin *admin = calloc(1, sizeof(*admin));
    if (!admin) {
        close(fd);
        return NULL;
    }
    admin->fd = fd;
    admin->addr = cfg->admin;
    admin->srv = srv;
    admin->ev = event_new(base, fd, EV_READ | EV_PERSIST, admin_accept_cb, admin);
    admin->resume_ev = evtimer_new(base, admin_resume_cb, admin);
    if (!admin->ev || !admin->resume_ev || event_add(admin->ev, NULL) < 0) {
        admin_free(admin);
        return NULL;
    }
    log_info("admin endpoint on %s", cfg->admin.text);
    return admin;
}

void
admin_free(struct admin *admin)
{
    if (!admin)
        return;
    if (admin->ev)
        event_free(admin->ev);
    if (admin->resume_ev)
        event_free(admin->resume_ev);
    close(admin->fd);
    free(admin);
}

int
admin_reconfigure(struct admin **admin, struct event_base *base, struct server *srv,
                  const struct cfg *prev, const struct cfg *next)
{
    if (!next->has_admin) {
        admin_free(*admin);
        *admin = NULL;
        return 0;
    }
    if (*admin && strcmp((*admin)->addr.text, next->admin.text) == 0)
        return 0;
    struct admin *fresh = admin_open(base, srv, next);
    if (!fresh)
        return -1;
    admin_free(*admin);
    *admin = fresh;
    return 0;
}
