/* SPDX-License-Identifier: MIT */
/* Giving up root: the decision (privileges_plan), the switch (privileges_apply) and the
 * words for what the switched process can no longer do (privileges_describe_self). See
 * privileges.h. The user and group databases are read here, on the main thread only (at
 * start, by `meridian -t`, and for a message during a reload), so the non-reentrant
 * getpwnam() family is safe: no worker ever calls it. */
#include "privileges.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"

/* Who a process is: its effective ids and their names. */
struct identity {
    bool known; /* the fields below are set */
    bool dropped;
    uid_t uid;
    gid_t gid;
    char user[64], group[64]; /* "" when the database has no name for the id */
};

/* Who this process is, as privileges_plan found it and privileges_apply left it. Written
 * on the main thread before any worker starts; read on the main thread. */
static struct identity self;

/* getpwnam() and getgrnam() return NULL with errno 0, ENOENT, ESRCH, EBADF or EPERM for a
 * name that is not there (getpwnam(3)); anything else is a failure to look. */
static bool
not_found(int e)
{
    return e == 0 || e == ENOENT || e == ESRCH || e == EBADF || e == EPERM;
}

static void
copy_name(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src != NULL ? src : "");
}

int
privileges_resolve(const struct cfg *cfg, struct privileges_plan *plan, char *err, size_t errlen)
{
    const struct cfg_privileges *p = &cfg->privileges;
    const struct passwd *pw;
    const struct group *gr;

    if (p->user == NULL)
        return 0;
    errno = 0;
    pw = getpwnam(p->user);
    if (pw == NULL) {
        if (not_found(errno))
            snprintf(err, errlen, "%s:%d: user: no such user \"%s\" (getent passwd %s finds none)",
                     cfg->path, p->user_line, p->user, p->user);
        else
            snprintf(err, errlen, "%s:%d: user: cannot look up \"%s\": %s", cfg->path, p->user_line,
                     p->user, strerror(errno));
        return -1;
    }
    if (pw->pw_uid == 0) {
        snprintf(err, errlen,
                 "%s:%d: user: \"%s\" is root (uid 0), which gives nothing up; name the "
                 "service's own account, or say run_as_root: true instead of user:",
                 cfg->path, p->user_line, p->user);
        return -1;
    }
    plan->uid = pw->pw_uid;
    plan->gid = pw->pw_gid;
    copy_name(plan->user, sizeof(plan->user), pw->pw_name);

    if (p->group != NULL) {
        errno = 0;
        gr = getgrnam(p->group);
        if (gr == NULL) {
            if (not_found(errno))
                snprintf(err, errlen,
                         "%s:%d: group: no such group \"%s\" (getent group %s finds none)",
                         cfg->path, p->group_line, p->group, p->group);
            else
                snprintf(err, errlen, "%s:%d: group: cannot look up \"%s\": %s", cfg->path,
                         p->group_line, p->group, strerror(errno));
            return -1;
        }
        plan->gid = gr->gr_gid;
        copy_name(plan->group, sizeof(plan->group), gr->gr_name);
    } else {
        gr = getgrgid(plan->gid);
        copy_name(plan->group, sizeof(plan->group), gr != NULL ? gr->gr_name : NULL);
    }
    if (plan->gid == 0) {
        snprintf(err, errlen,
                 "%s:%d: %s: group \"%s\" is root's group (gid 0); name the service's own "
                 "group%s",
                 cfg->path, p->group != NULL ? p->group_line : p->user_line,
                 p->group != NULL ? "group" : "user", plan->group,
                 p->group != NULL ? "" : " with group:");
        return -1;
    }
    return 0;
}

/* Who the process is now, names included. */
static void
look_up_self(struct identity *id)
{
    const struct passwd *pw;
    const struct group *gr;

    memset(id, 0, sizeof(*id));
    id->uid = geteuid();
    id->gid = getegid();
    pw = getpwuid(id->uid);
    copy_name(id->user, sizeof(id->user), pw != NULL ? pw->pw_name : NULL);
    gr = getgrgid(id->gid);
    copy_name(id->group, sizeof(id->group), gr != NULL ? gr->gr_name : NULL);
    id->known = true;
}

/* "user nobody (uid 65534)", or "uid 1234" when the database has no name for it. */
static void
describe_id(char *buf, size_t len, const char *kind, const char *name, const char *id_kind,
            unsigned id)
{
    if (name[0] != '\0')
        snprintf(buf, len, "%s %s (%s %u)", kind, name, id_kind, id);
    else
        snprintf(buf, len, "%s %u", id_kind, id);
}

int
privileges_plan(const struct cfg *cfg, struct privileges_plan *plan, char *err, size_t errlen)
{
    const struct cfg_privileges *p = &cfg->privileges;
    char now[160];

    memset(plan, 0, sizeof(*plan));
    if (privileges_resolve(cfg, plan, err, errlen) < 0)
        return -1;
    look_up_self(&self);

    if (self.uid == 0) {
        if (p->user != NULL) {
            plan->action = PRIVILEGES_DROP;
            return 0;
        }
        if (p->run_as_root) {
            plan->action = PRIVILEGES_ROOT;
            return 0;
        }
        snprintf(err, errlen,
                 "%s: refusing to run as root: add user: (and group:) naming the account to "
                 "switch to once the listeners are bound, or run_as_root: true to stay root "
                 "(not recommended)",
                 cfg->path);
        return -1;
    }

    /* Not root: only the user we are already is possible (systemd's User=). */
    plan->action = PRIVILEGES_STAY;
    if (p->user != NULL && plan->uid != self.uid) {
        describe_id(now, sizeof(now), "user", self.user, "uid", (unsigned)self.uid);
        snprintf(err, errlen,
                 "%s:%d: user: \"%s\" (uid %u), but meridian was started as %s, and only root "
                 "can switch users: start it as root or as %s, or leave user: out",
                 cfg->path, p->user_line, plan->user, (unsigned)plan->uid, now, plan->user);
        return -1;
    }
    if (p->group != NULL && plan->gid != self.gid) {
        describe_id(now, sizeof(now), "group", self.group, "gid", (unsigned)self.gid);
        snprintf(err, errlen,
                 "%s:%d: group: \"%s\" (gid %u), but meridian was started with %s, and only "
                 "root can switch groups: start it as root or with group %s, or leave group: "
                 "out",
                 cfg->path, p->group_line, plan->group, (unsigned)plan->gid, now, plan->group);
        return -1;
    }
    return 0;
}

int
privileges_apply(const struct privileges_plan *plan, char *err, size_t errlen)
{
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;

    if (plan->action != PRIVILEGES_DROP)
        return 0;
    /* Groups first: once the uid is not root, neither can change. */
    if (initgroups(plan->user, plan->gid) < 0) {
        snprintf(err, errlen, "cannot take the supplementary groups of user %s (initgroups): %s",
                 plan->user, strerror(errno));
        return -1;
    }
    /* A user listed in group root would keep root's group through the back door. */
    gid_t groups[256];
    int ngroups = getgroups((int)(sizeof(groups) / sizeof(groups[0])), groups);
    if (ngroups < 0) {
        snprintf(err, errlen, "cannot list the supplementary groups of user %s: %s", plan->user,
                 strerror(errno));
        return -1;
    }
    for (int i = 0; i < ngroups; i++) {
        if (groups[i] == 0) {
            snprintf(err, errlen, "user %s is a member of group root (gid 0): refusing to keep it",
                     plan->user);
            return -1;
        }
    }
    if (setgid(plan->gid) < 0) {
        snprintf(err, errlen, "cannot switch to group %s (gid %u): %s", plan->group,
                 (unsigned)plan->gid, strerror(errno));
        return -1;
    }
    if (setuid(plan->uid) < 0) {
        snprintf(err, errlen, "cannot switch to user %s (uid %u): %s", plan->user,
                 (unsigned)plan->uid, strerror(errno));
        return -1;
    }
    /* Real, effective and saved ids all changed, and there is no way back: a kept
     * capability (SECBIT_NO_SETUID_FIXUP set by whoever started us) would show here. */
    if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0 ||
        ruid != plan->uid || euid != plan->uid || suid != plan->uid || rgid != plan->gid ||
        egid != plan->gid || sgid != plan->gid) {
        snprintf(err, errlen, "switched to user %s and group %s, but the ids did not all follow",
                 plan->user, plan->group);
        return -1;
    }
    if (setuid(0) != -1 || setgid(0) != -1) {
        snprintf(err, errlen,
                 "switched to user %s, but could become root again (setuid(0) succeeded): "
                 "refusing to run",
                 plan->user);
        return -1;
    }
    self.uid = plan->uid;
    self.gid = plan->gid;
    copy_name(self.user, sizeof(self.user), plan->user);
    copy_name(self.group, sizeof(self.group), plan->group);
    self.dropped = true;
    return 0;
}

void
privileges_describe_self(char *buf, size_t len)
{
    struct identity now;
    const struct identity *id = &self;
    char user[96], group[96];

    if (!self.known) {
        look_up_self(&now);
        id = &now;
    }
    describe_id(user, sizeof(user), "user", id->user, "uid", (unsigned)id->uid);
    describe_id(group, sizeof(group), "group", id->group, "gid", (unsigned)id->gid);
    snprintf(buf, len, "%s, %s%s", user, group,
             id->dropped ? ", having given up root at start" : "");
}

const char *
privileges_note(int err, char *buf, size_t len)
{
    char who[256];

    if (err != EACCES)
        return "";
    privileges_describe_self(who, sizeof(who));
    snprintf(buf, len, "; meridian runs as %s", who);
    return buf;
}

const char *
privileges_bind_note(int err, char *buf, size_t len)
{
    char who[256];

    if (err != EACCES)
        return "";
    privileges_describe_self(who, sizeof(who));
    snprintf(buf, len,
             "; ports below 1024 take root or CAP_NET_BIND_SERVICE, and meridian runs as %s%s", who,
             self.dropped ? ": restart it to listen there" : "");
    return buf;
}

bool
privileges_dropped(void)
{
    return self.dropped;
}
