#include "cli.h"

#include "probe.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "runnel%s%s: %s\nTry 'runnel%s%s --help'.\n", cmd ? " " : "", cmd ? cmd : "",
            msg, cmd ? " " : "", cmd ? cmd : "");
    return CLI_EXIT_USAGE;
}

int cli_fail(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "runnel: %s\n", msg);
    return CLI_EXIT_FAIL;
}

int cli_getopt_error(const char *cmd, int c, char **argv)
{
    /* optind has moved past the offending word; for a short option optopt names it. */
    const char *word = optind > 0 ? argv[optind - 1] : "?";
    char flag[64];
    if (strncmp(word, "--", 2) != 0 && optopt > ' ' && optopt < 127) {
        snprintf(flag, sizeof flag, "-%c", optopt);
    } else {
        snprintf(flag, sizeof flag, "%s", word);
        flag[strcspn(flag, "=")] = '\0';
    }
    if (c == ':')
        return cli_usage_error(cmd, "option '%s' needs a value", flag);
    return cli_usage_error(cmd, "unknown option '%s'", flag);
}

bool cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool cli_set_brokers(cli_t *cli, const char *cmd, const char *value)
{
    char list[1024];
    if (!value || !*value || strlen(value) >= sizeof list) {
        cli_usage_error(cmd, "option '-b' needs HOST:PORT[,HOST:PORT…]");
        return false;
    }
    snprintf(list, sizeof list, "%s", value);
    char *save = NULL;
    for (char *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
        char host[256], port[16];
        if (!rn_probe_split_addr(a, host, sizeof host, port, sizeof port)) {
            cli_usage_error(cmd, "option '-b': '%s' is not HOST:PORT", a);
            return false;
        }
    }
    cli->brokers = value;
    cli->brokers_from = "-b";
    return true;
}

bool cli_brokers_reachable(const cli_t *cli)
{
    char why[1024];
    if (rn_probe_brokers(cli->brokers, 3000, why, sizeof why))
        return true;
    fprintf(stderr,
            "runnel: cannot reach broker %s — is runnel-broker running? "
            "Set -b HOST:PORT or RUNNEL_BROKERS (brokers from %s: %s)\n",
            why, cli->brokers_from, cli->brokers);
    return false;
}

rn_conf_t *cli_conf_new(const cli_t *cli)
{
    rn_conf_t *conf = rn_conf_new();
    if (!conf) {
        cli_fail("out of memory");
        return NULL;
    }
    char errbuf[256] = "";
    rn_err_t err = rn_conf_set(conf, "bootstrap.servers", cli->brokers, errbuf, sizeof errbuf);
    if (err == RN_OK)
        err = rn_conf_set(conf, "client.id", "runnel-cli", errbuf, sizeof errbuf);
    if (err != RN_OK) {
        cli_fail("bad broker list '%s': %s", cli->brokers, errbuf[0] ? errbuf : rn_err_str(err));
        rn_conf_free(conf);
        return NULL;
    }
    return conf;
}

bool cli_conf_set_pair(rn_conf_t *conf, const char *cmd, const char *pair)
{
    char errbuf[256] = "";
    rn_err_t err = rn_conf_set_pair(conf, pair, errbuf, sizeof errbuf);
    if (err == RN_OK)
        return true;
    cli_usage_error(cmd, "-X %s: %s", pair, errbuf[0] ? errbuf : rn_err_str(err));
    return false;
}

rn_admin_t *cli_admin_new(const cli_t *cli)
{
    rn_conf_t *conf = cli_conf_new(cli);
    if (!conf)
        return NULL;
    rn_admin_t *admin = NULL;
    char errbuf[256] = "";
    rn_err_t err = rn_admin_new(conf, &admin, errbuf, sizeof errbuf);
    rn_conf_free(conf);
    if (err != RN_OK) {
        cli_report(cli, "cannot create an admin client", err, errbuf);
        return NULL;
    }
    return admin;
}

rn_metadata_t *cli_describe_topic(const cli_t *cli, rn_admin_t *admin, const char *topic,
                                  const rn_topic_info_t **info)
{
    rn_metadata_t *md = NULL;
    rn_err_t err = rn_admin_describe(admin, topic, CLI_TIMEOUT_MS, &md);
    if (err == RN_OK) {
        for (size_t i = 0; md && i < md->topic_count; i++) {
            if (strcmp(md->topics[i].name, topic) == 0) {
                err = md->topics[i].err;
                if (err == RN_OK && md->topics[i].partition_count > 0) {
                    *info = &md->topics[i];
                    return md;
                }
                break;
            }
        }
        if (err == RN_OK)
            err = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    if (md)
        rn_metadata_free(md);
    char what[300];
    snprintf(what, sizeof what, "topic '%s'", topic);
    cli_report(cli, what, err, NULL);
    return NULL;
}

int cli_report(const cli_t *cli, const char *what, rn_err_t err, const char *detail)
{
    const char *hint = NULL;
    char hint_buf[300];
    switch (err) {
    case RN_ERR_TRANSPORT:
    case RN_ERR_BROKER_NOT_AVAILABLE:
    case RN_ERR_TIMED_OUT:
    case RN_ERR_REQUEST_TIMED_OUT:
        snprintf(hint_buf, sizeof hint_buf,
                 "is runnel-broker running at %s? Set -b HOST:PORT or RUNNEL_BROKERS",
                 cli->brokers);
        hint = hint_buf;
        break;
    case RN_ERR_UNKNOWN_TOPIC_OR_PARTITION:
        hint = "list topics with 'runnel topic list'; create one with "
               "'runnel topic create NAME --partitions N'";
        break;
    case RN_ERR_TOPIC_ALREADY_EXISTS:
        hint = "pass --if-not-exists to accept an existing topic";
        break;
    case RN_ERR_INVALID_CONFIG:
    case RN_ERR_UNKNOWN_CONFIG:
    case RN_ERR_BAD_CONFIG:
        hint = "see 'runnel topic create --help' for the topic settings";
        break;
    case RN_ERR_MESSAGE_TOO_LARGE:
        hint = "raise the topic's max.message.bytes or send smaller records";
        break;
    case RN_ERR_NOT_CONTROLLER:
        hint = "no active controller answered; see 'runnel cluster status'";
        break;
    case RN_ERR_UNSUPPORTED_VERSION:
        hint = "the broker is older than this runnel";
        break;
    default:
        break;
    }
    const char *sep = err == RN_ERR_UNKNOWN_TOPIC_OR_PARTITION ? " " : ": ";
    const char *msg = err == RN_ERR_UNKNOWN_TOPIC_OR_PARTITION ? "does not exist" : rn_err_str(err);
    bool has_detail = detail && *detail && strcmp(detail, msg) != 0;
    fprintf(stderr, "runnel: %s%s%s%s%s%s%s%s\n", what, sep, msg, has_detail ? " (" : "",
            has_detail ? detail : "", has_detail ? ")" : "", hint ? " — " : "", hint ? hint : "");
    return CLI_EXIT_FAIL;
}

double cli_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
