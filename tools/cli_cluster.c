/*
 * cli_cluster.c - `runnel cluster status`: the brokers, which is the active controller, the
 * raft term and commit index, the under-replicated and offline partition counts
 * (DescribeCluster, docs/cluster.md §6.1); `runnel cluster rebalance-leaders`: preferred
 * leader election through librunnel's rn_admin_elect_leaders.
 *
 * DescribeCluster is not part of librunnel's public API (it is an operator's view, not a
 * client's), so this speaks the wire protocol itself: one blocking request on one TCP
 * connection, framed as in runnel.proto (u32 little-endian length, then the message).
 * Only the active controller knows which sessions are live; when the first broker that
 * answers is not it, the command asks the controller too and prints its answer.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"
#include "probe.h"
#include "runnel.pb-c.h"

#define MAX_RESPONSE (16u << 20)
#define IO_TIMEOUT_S 5

static const char cluster_usage[] =
    "Usage: runnel cluster status [-b HOST:PORT[,…]]\n"
    "       runnel cluster rebalance-leaders [--topic T]… [-b HOST:PORT[,…]]\n"
    "\n"
    "status prints the cluster id, the active controller with the raft term and commit index,\n"
    "the number of under-replicated partitions (ISR smaller than the replica set) and offline\n"
    "partitions (no leader), and one line per registered broker: its address, whether the\n"
    "active controller holds a live session for it (ALIVE) and whether it is fenced, and its\n"
    "broker epoch. On a broker without --controller-quorum it prints that single node and says\n"
    "there is no controller quorum.\n"
    "\n"
    "rebalance-leaders moves leadership back to preferred replicas; see\n"
    "'runnel cluster rebalance-leaders --help'.\n"
    "\n"
    "  -b, --brokers HOST:PORT[,…]   bootstrap brokers (the first that answers is asked)\n"
    "  -h, --help                    this help\n"
    "\n"
    "Example:\n"
    "  runnel -b 127.0.0.1:9092 cluster status\n";

static const char rebalance_usage[] =
    "Usage: runnel cluster rebalance-leaders [--topic T]… [-b HOST:PORT[,…]]\n"
    "\n"
    "Moves each partition's leadership to its preferred replica (the first of its replica\n"
    "list, see 'runnel topic describe') where that replica is in the ISR: a preferred leader\n"
    "election on the active controller (ElectLeaders). Run it after a failed broker is back\n"
    "and in sync, to spread leadership out again. Prints one line per partition:\n"
    "  Topic: T\tPartition: 0\tmoved to leader 3\n"
    "  Topic: T\tPartition: 1\telection not needed (leader 1)\n"
    "  Topic: T\tPartition: 2\tpreferred leader not available (leader 2)\n"
    "\n"
    "Exit status 0 when every partition moved or needed no election, 1 otherwise.\n"
    "\n"
    "  -t, --topic T                 only this topic; repeat for more (default: every topic)\n"
    "  -b, --brokers HOST:PORT[,…]   bootstrap brokers\n"
    "  -h, --help                    this help\n"
    "\n"
    "Example:\n"
    "  runnel cluster rebalance-leaders --topic clickstream\n";

static int dial(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *p = ai; p && fd < 0; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype, p->ai_protocol);
        if (fd < 0)
            continue;
        struct timeval tv = {IO_TIMEOUT_S, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, p->ai_addr, p->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    return fd;
}

static bool io_all(int fd, void *buf, size_t len, bool writing)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = writing ? write(fd, p, len) : read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* One DescribeCluster to host:port; NULL with why filled on any failure. */
static Runnel__Response *describe(const char *host, const char *port, char *why, size_t wlen)
{
    int fd = dial(host, port);
    if (fd < 0) {
        snprintf(why, wlen, "%s:%s: cannot connect", host, port);
        return NULL;
    }
    Runnel__RequestHeader h = RUNNEL__REQUEST_HEADER__INIT;
    h.api = RUNNEL__API_KEY__API_DESCRIBE_CLUSTER;
    h.correlation_id = 1;
    h.client_id = (char *)"runnel-cli";
    Runnel__DescribeClusterRequest body = RUNNEL__DESCRIBE_CLUSTER_REQUEST__INIT;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.header = &h;
    req.body_case = RUNNEL__REQUEST__BODY_DESCRIBE_CLUSTER;
    req.describe_cluster = &body;
    size_t len = runnel__request__get_packed_size(&req);
    uint8_t *frame = malloc(4 + len);
    Runnel__Response *r = NULL;
    uint8_t hdr[4];
    if (!frame)
        goto out;
    frame[0] = (uint8_t)len, frame[1] = (uint8_t)(len >> 8);
    frame[2] = (uint8_t)(len >> 16), frame[3] = (uint8_t)(len >> 24);
    runnel__request__pack(&req, frame + 4);
    if (!io_all(fd, frame, 4 + len, true) || !io_all(fd, hdr, 4, false)) {
        snprintf(why, wlen, "%s:%s: no answer", host, port);
        goto out;
    }
    uint32_t rlen = hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
                    (uint32_t)hdr[3] << 24;
    free(frame);
    frame = rlen <= MAX_RESPONSE ? malloc(rlen ? rlen : 1) : NULL;
    if (!frame || !io_all(fd, frame, rlen, false)) {
        snprintf(why, wlen, "%s:%s: bad or short answer", host, port);
        goto out;
    }
    r = runnel__response__unpack(NULL, rlen, frame);
    if (!r)
        snprintf(why, wlen, "%s:%s: answer does not parse", host, port);
out:
    free(frame);
    close(fd);
    return r;
}

static void print_status(const Runnel__DescribeClusterResponse *d)
{
    if (!d->quorum) {
        printf("single node: no controller quorum (broker %" PRId32 " is its own controller)\n",
               d->answered_by);
    } else {
        printf("cluster id:  %s\n", d->cluster_id[0] ? d->cluster_id : "(not yet written)");
        if (d->controller_id >= 0)
            printf("controller:  %" PRId32 "\n", d->controller_id);
        else
            printf("controller:  none (no quorum elected a leader)\n");
        printf("raft:        term %" PRIu64 ", commit index %" PRIu64 ", applied %" PRIu64
               " (as broker %" PRId32 " sees it)\n", d->raft_term, d->raft_commit_index,
               d->raft_last_applied, d->answered_by);
        if (!d->alive_known)
            printf("note:        the active controller did not answer; ALIVE shows \"not "
                   "fenced\"\n");
    }
    printf("partitions:  %" PRIu32 " under-replicated, %" PRIu32 " offline\n",
           d->under_replicated_partitions, d->offline_partitions);
    printf("%-8s %-24s %-6s %-7s %s\n", "BROKER", "ADDRESS", "ALIVE", "FENCED", "EPOCH");
    for (size_t i = 0; i < d->n_brokers; i++) {
        const Runnel__BrokerStatus *b = d->brokers[i];
        char addr[300];
        snprintf(addr, sizeof addr, "%s:%" PRIu32, b->host, b->port);
        printf("%-8" PRId32 " %-24s %-6s %-7s %" PRIu64 "%s\n", b->broker_id, addr,
               b->alive ? "yes" : "no", b->fenced ? "yes" : "no", b->broker_epoch,
               d->quorum && b->broker_id == d->controller_id ? "  (controller)" : "");
    }
    if (d->quorum && d->n_brokers == 0)
        printf("(no broker registered yet)\n");
}

/* The controller's own answer when the first one came from another broker; else NULL. */
static Runnel__Response *ask_controller(const Runnel__DescribeClusterResponse *d)
{
    if (!d->quorum || d->alive_known || d->controller_id < 0)
        return NULL;
    for (size_t i = 0; i < d->n_brokers; i++) {
        const Runnel__BrokerStatus *b = d->brokers[i];
        if (b->broker_id != d->controller_id)
            continue;
        char port[16], why[256];
        snprintf(port, sizeof port, "%" PRIu32, b->port);
        Runnel__Response *r = describe(b->host, port, why, sizeof why);
        if (r && (r->error || r->body_case != RUNNEL__RESPONSE__BODY_DESCRIBE_CLUSTER ||
                  !r->describe_cluster->alive_known)) {
            runnel__response__free_unpacked(r, NULL);
            r = NULL;
        }
        return r;
    }
    return NULL;
}

static int status(const cli_t *cli)
{
    char list[1024], whys[2048] = "";
    snprintf(list, sizeof list, "%s", cli->brokers);
    for (char *save = NULL, *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
        char host[256], port[16], why[256] = "";
        if (!rn_probe_split_addr(a, host, sizeof host, port, sizeof port))
            continue;
        Runnel__Response *r = describe(host, port, why, sizeof why);
        if (!r) {
            size_t l = strlen(whys);
            snprintf(whys + l, sizeof whys - l, "%s%s", l ? "; " : "", why);
            continue;
        }
        if (r->error || r->body_case != RUNNEL__RESPONSE__BODY_DESCRIBE_CLUSTER) {
            int rc = cli_fail("%s: DescribeCluster failed: %s (a broker older than this "
                              "runnel?)", a, r->error_message[0] ? r->error_message : "error");
            runnel__response__free_unpacked(r, NULL);
            return rc;
        }
        Runnel__Response *c = ask_controller(r->describe_cluster);
        print_status(c ? c->describe_cluster : r->describe_cluster);
        if (c)
            runnel__response__free_unpacked(c, NULL);
        runnel__response__free_unpacked(r, NULL);
        return CLI_EXIT_OK;
    }
    return cli_fail("no broker answered (%s, from %s): %s — is runnel-broker running there?",
                    cli->brokers, cli->brokers_from, whys[0] ? whys : "no valid address");
}

/* One line per partition; returns whether every result is a success. */
static bool print_elections(const rn_election_results_t *r)
{
    bool ok = true;
    for (size_t i = 0; i < r->count; i++) {
        const rn_election_result_t *e = &r->results[i];
        printf("Topic: %s\tPartition: %" PRId32 "\t", e->topic, e->partition);
        switch (e->err) {
        case RN_OK: printf("moved to leader %" PRId32 "\n", e->leader); break;
        case RN_ERR_ELECTION_NOT_NEEDED:
            printf("election not needed (leader %" PRId32 ")\n", e->leader);
            break;
        case RN_ERR_PREFERRED_LEADER_NOT_AVAILABLE:
            ok = false;
            if (e->leader >= 0)
                printf("preferred leader not available (leader %" PRId32 ")\n", e->leader);
            else
                printf("preferred leader not available (no leader)\n");
            break;
        default:
            ok = false;
            printf("failed: %s (%s)\n", rn_err_name(e->err), rn_err_str(e->err));
            break;
        }
    }
    return ok;
}

static int rebalance_leaders(const cli_t *cli, const char *const *topics)
{
    if (!cli_brokers_reachable(cli))
        return CLI_EXIT_FAIL;
    rn_admin_t *admin = cli_admin_new(cli);
    if (!admin)
        return CLI_EXIT_FAIL;
    rn_election_results_t *r = NULL;
    char errbuf[512] = "";
    rn_err_t err = rn_admin_elect_leaders(admin, true, topics, CLI_TIMEOUT_MS, &r, errbuf,
                                          sizeof errbuf);
    rn_admin_close(admin);
    if (err != RN_OK)
        return cli_report(cli, "preferred leader election failed", err, errbuf);
    bool ok = print_elections(r);
    if (r->count == 0)
        printf("(no partitions)\n");
    rn_election_results_free(r);
    if (fflush(stdout) != 0)
        return CLI_EXIT_FAIL;
    return ok ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

int cli_cluster_main(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"bootstrap-server", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(cluster_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    bool rebalance = strcmp(argv[1], "rebalance-leaders") == 0;
    if (!rebalance && strcmp(argv[1], "status") != 0)
        return cli_usage_error("cluster",
                               "unknown subcommand '%s' (subcommands: status, rebalance-leaders)",
                               argv[1]);
    const char *cmd = rebalance ? "cluster rebalance-leaders" : "cluster status";
    const char *topics[argc + 1];
    size_t n_topics = 0;
    topics[0] = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc - 1, argv + 1, "+b:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (!cli_set_brokers(cli, cmd, optarg))
                return CLI_EXIT_USAGE;
            break;
        case 't':
            if (!rebalance)
                return cli_usage_error(cmd, "option '--topic' applies to 'cluster "
                                            "rebalance-leaders'");
            if (!*optarg)
                return cli_usage_error(cmd, "option '--topic' needs a topic name");
            topics[n_topics++] = optarg;
            topics[n_topics] = NULL;
            break;
        case 'h': fputs(rebalance ? rebalance_usage : cluster_usage, stdout); return CLI_EXIT_OK;
        default: return cli_getopt_error(cmd, c, argv + 1);
        }
    }
    if (optind < argc - 1)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
    return rebalance ? rebalance_leaders(cli, topics) : status(cli);
}
