/* SPDX-License-Identifier: MIT */
/* Command line: run, check a config, or say what we are. Everything else is server.c. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_load.h"
#include "privileges.h"
#include "server.h"
#include "version.h"

#ifndef MERIDIAN_SYSCONFDIR
#define MERIDIAN_SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG MERIDIAN_SYSCONFDIR "/meridian.yaml"

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: meridian [-c FILE] [-t] [-V] [-h]\n"
            "  -c FILE  configuration file (default " DEFAULT_CONFIG ")\n"
            "  -t       check the configuration and exit: 0 if it is valid, 1 if not\n"
            "  -V       print the version and the library versions, and exit\n"
            "  -h       print this help, and exit\n"
            "signals: SIGHUP reloads the configuration, SIGTERM/SIGINT stop gracefully,\n"
            "         SIGUSR1 reopens the access log\n");
}

int
main(int argc, char **argv)
{
    const char *path = DEFAULT_CONFIG;
    bool check_only = false;
    int opt;
    while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            check_only = true;
            break;
        case 'V': {
            char libs[1024];
            version_libraries(libs, sizeof(libs));
            printf("meridian %s\n%s", version_string(), libs);
            return 0;
        }
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "meridian: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    if (check_only) {
        char *errors = NULL;
        struct cfg *cfg = cfg_load_file(path, &errors);
        if (!cfg) {
            fputs(errors ? errors : "cannot load configuration\n", stderr);
            free(errors);
            return 1;
        }
        /* user: and group: name accounts that must exist where the file is checked (the
         * loader itself never looks names up). Whether this process may become them is
         * for start-up to say: the check may run as anyone (systemd's ExecStartPre). */
        struct privileges_plan plan = {0};
        char why[1024];
        if (privileges_resolve(cfg, &plan, why, sizeof(why)) < 0) {
            fprintf(stderr, "%s\n", why);
            cfg_unref(cfg);
            return 1;
        }
        printf("%s: configuration is valid\n", path);
        /* A check must not depend on DNS: names are only checked for form. */
        if (cfg->nnames > 0)
            printf("%s: %zu backend name%s not resolved by -t\n", path, cfg->nnames,
                   cfg->nnames == 1 ? "" : "s");
        cfg_unref(cfg);
        return 0;
    }
    return server_run(path);
}
