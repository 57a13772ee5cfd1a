/*
 * cli_topic.c - `runnel topic create|delete|list|describe`, shaped like kafka-topics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char topic_usage[] =
    "Usage: runnel topic create NAME --partitions N [--replication-factor R] [--config k=v]…\n"
    "                         [--if-not-exists]\n"
    "       runnel topic delete NAME [--if-exists]\n"
    "       runnel topic list\n"
    "       runnel topic describe [NAME]\n"
    "\n"
    "Every subcommand takes -b HOST:PORT[,…] and --help. NAME may also be given as -t/--topic.\n";

static const char create_usage[] =
    "Usage: runnel topic create NAME --partitions N [OPTIONS]\n"
    "\n"
    "Creates a topic. Prints \"Created topic NAME.\" on success.\n"
    "\n"
    "  -t, --topic NAME              the topic (or give NAME as the first argument)\n"
    "      --partitions N            number of partitions (required, >= 1)\n"
    "      --replication-factor R    copies of each partition (default 1)\n"
    "      --config KEY=VALUE        a topic setting; repeat for more. Keys: retention.ms,\n"
    "                                retention.bytes, segment.bytes, segment.ms, flush.messages,\n"
    "                                flush.ms, max.message.bytes, segment.index.bytes,\n"
    "                                index.interval.bytes\n"
    "      --if-not-exists           succeed quietly when the topic already exists\n"
    "  -b, --brokers HOST:PORT[,…]   bootstrap brokers\n"
    "  -h, --help                    this help\n"
    "\n"
    "Example:\n"
    "  runnel topic create clickstream --partitions 6 --config retention.ms=86400000\n";

static const char delete_usage[] =
    "Usage: runnel topic delete NAME [--if-exists]\n"
    "\n"
    "Deletes a topic and all its records. Prints \"Deleted topic NAME.\" on success.\n"
    "\n"
    "  -t, --topic NAME              the topic (or give NAME as the first argument)\n"
    "      --if-exists               succeed quietly when there is no such topic\n"
    "  -b, --brokers HOST:PORT[,…]   bootstrap brokers\n"
    "  -h, --help                    this help\n";

static const char list_usage[] =
    "Usage: runnel topic list\n"
    "\n"
    "Prints the name of every topic, one per line, sorted.\n"
    "\n"
    "  -b, --brokers HOST:PORT[,…]   bootstrap brokers\n"
    "  -h, --help                    this help\n";

static const char describe_usage[] =
    "Usage: runnel topic describe [NAME]\n"
    "\n"
    "For each topic (all when NAME is not given) a header line with its partition count,\n"
    "replication factor and configs, then one line per partition:\n"
    "  Topic: T  PartitionCount: 6  ReplicationFactor: 1  Configs: retention.ms=…\n"
    "      Topic: T  Partition: 0  Leader: 1  Replicas: 1  Isr: 1  LogStartOffset: 0  "
    "LogEndOffset: 16678\n"
    "Leader is the broker serving the partition (none while it has no leader), Replicas its\n"
    "replica set (the first is the preferred leader), Isr the replicas in sync with the\n"
    "leader. \"Offline: 2\" follows Isr when replicas sit on fenced or unregistered brokers.\n"
    "\n"
    "  -t, --topic NAME              the topic (or give NAME as the first argument)\n"
    "  -b, --brokers HOST:PORT[,…]   bootstrap brokers\n"
    "  -h, --help                    this help\n";

enum { OPT_PARTITIONS = 1000, OPT_RF, OPT_CONFIG, OPT_IF_NOT_EXISTS, OPT_IF_EXISTS };

typedef struct topic_args {
    const char *name;
    int64_t partitions;
    int64_t replication_factor;
    const char **configs;       /* NULL-terminated */
    size_t config_count;
    bool if_not_exists;
    bool if_exists;
} topic_args_t;

/*
 * Parses a subcommand's argv (argv[0] the subcommand). Returns -1 to go on, or an exit status
 * (after --help or a usage error).
 */
static int parse(cli_t *cli, const char *cmd, const char *usage, int argc, char **argv,
                 topic_args_t *args, bool want_name, bool name_required)
{
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"bootstrap-server", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"partitions", required_argument, NULL, OPT_PARTITIONS},
        {"replication-factor", required_argument, NULL, OPT_RF},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"if-not-exists", no_argument, NULL, OPT_IF_NOT_EXISTS},
        {"if-exists", no_argument, NULL, OPT_IF_EXISTS},
        {NULL, 0, NULL, 0},
    };
    bool is_create = strcmp(argv[0], "create") == 0;
    bool is_delete = strcmp(argv[0], "delete") == 0;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":b:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (!cli_set_brokers(cli, cmd, optarg))
                return CLI_EXIT_USAGE;
            break;
        case 't':
            if (!want_name)
                return cli_usage_error(cmd, "option '-t' does not apply here");
            args->name = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        case OPT_PARTITIONS:
            if (!is_create)
                return cli_usage_error(cmd, "option '--partitions' applies to 'topic create'");
            if (!cli_parse_i64(optarg, 1, 1000000, &args->partitions))
                return cli_usage_error(cmd, "option '--partitions': '%s' is not a count >= 1",
                                       optarg);
            break;
        case OPT_RF:
            if (!is_create)
                return cli_usage_error(cmd,
                                       "option '--replication-factor' applies to 'topic create'");
            if (!cli_parse_i64(optarg, 1, 1000, &args->replication_factor))
                return cli_usage_error(cmd,
                                       "option '--replication-factor': '%s' is not a count >= 1",
                                       optarg);
            break;
        case OPT_CONFIG:
            if (!is_create)
                return cli_usage_error(cmd, "option '--config' applies to 'topic create'");
            if (!strchr(optarg, '=') || optarg[0] == '=')
                return cli_usage_error(cmd, "option '--config': '%s' is not KEY=VALUE", optarg);
            args->configs[args->config_count++] = optarg;
            args->configs[args->config_count] = NULL;
            break;
        case OPT_IF_NOT_EXISTS:
            if (!is_create)
                return cli_usage_error(cmd, "option '--if-not-exists' applies to 'topic create'");
            args->if_not_exists = true;
            break;
        case OPT_IF_EXISTS:
            if (!is_delete)
                return cli_usage_error(cmd, "option '--if-exists' applies to 'topic delete'");
            args->if_exists = true;
            break;
        default:
            return cli_getopt_error(cmd, c, argv);
        }
    }
    int positional = argc - optind;
    if (positional > 0) {
        if (!want_name || args->name)
            return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
        if (positional > 1)
            return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
        args->name = argv[optind];
    }
    if (name_required && !args->name)
        return cli_usage_error(cmd, "a topic NAME is required");
    return -1;
}

static int topic_create(cli_t *cli, topic_args_t *args)
{
    if (args->partitions == 0)
        return cli_usage_error("topic create", "option '--partitions N' is required");
    if (!cli_brokers_reachable(cli))
        return CLI_EXIT_FAIL;
    rn_admin_t *admin = cli_admin_new(cli);
    if (!admin)
        return CLI_EXIT_FAIL;
    char errbuf[512] = "";
    rn_err_t err = rn_admin_create_topic(admin, args->name, (int)args->partitions,
                                         (int)args->replication_factor, args->configs,
                                         CLI_TIMEOUT_MS, errbuf, sizeof errbuf);
    rn_admin_close(admin);
    if (err == RN_ERR_TOPIC_ALREADY_EXISTS && args->if_not_exists)
        return CLI_EXIT_OK;
    if (err != RN_OK) {
        char what[300];
        snprintf(what, sizeof what, "cannot create topic '%s'", args->name);
        return cli_report(cli, what, err, errbuf);
    }
    printf("Created topic %s.\n", args->name);
    return CLI_EXIT_OK;
}

static int topic_delete(cli_t *cli, topic_args_t *args)
{
    if (!cli_brokers_reachable(cli))
        return CLI_EXIT_FAIL;
    rn_admin_t *admin = cli_admin_new(cli);
    if (!admin)
        return CLI_EXIT_FAIL;
    char errbuf[512] = "";
    rn_err_t err = rn_admin_delete_topic(admin, args->name, CLI_TIMEOUT_MS, errbuf, sizeof errbuf);
    rn_admin_close(admin);
    if (err == RN_ERR_UNKNOWN_TOPIC_OR_PARTITION && args->if_exists)
        return CLI_EXIT_OK;
    if (err != RN_OK) {
        char what[300];
        snprintf(what, sizeof what, "topic '%s'", args->name);
        if (err != RN_ERR_UNKNOWN_TOPIC_OR_PARTITION)
            snprintf(what, sizeof what, "cannot delete topic '%s'", args->name);
        return cli_report(cli, what, err, errbuf);
    }
    printf("Deleted topic %s.\n", args->name);
    return CLI_EXIT_OK;
}

static int cmp_topic_name(const void *a, const void *b)
{
    const rn_topic_info_t *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* The metadata's topics sorted by name (a fresh array of pointers), or NULL when none. */
static const rn_topic_info_t **sorted_topics(const rn_metadata_t *md)
{
    if (md->topic_count == 0)
        return NULL;
    const rn_topic_info_t **v = calloc(md->topic_count, sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; i < md->topic_count; i++)
        v[i] = &md->topics[i];
    qsort(v, md->topic_count, sizeof *v, cmp_topic_name);
    return v;
}

static void print_ids(const int32_t *ids, size_t n)
{
    if (n == 0)
        fputs("none", stdout);
    for (size_t i = 0; i < n; i++)
        printf("%s%d", i ? "," : "", ids[i]);
}

static void describe_one(const rn_topic_info_t *t)
{
    size_t rf = t->partition_count ? t->partitions[0].replica_count : 0;
    printf("Topic: %s\tPartitionCount: %zu\tReplicationFactor: %zu\tConfigs: ", t->name,
           t->partition_count, rf);
    for (size_t i = 0; i < t->config_count; i++)
        printf("%s%s=%s", i ? "," : "", t->config_keys[i], t->config_values[i]);
    putchar('\n');
    for (size_t i = 0; i < t->partition_count; i++) {
        const rn_partition_info_t *p = &t->partitions[i];
        printf("\tTopic: %s\tPartition: %d\tLeader: ", t->name, p->partition);
        if (p->leader >= 0)
            printf("%d", p->leader);
        else
            fputs("none", stdout);
        fputs("\tReplicas: ", stdout);
        print_ids(p->replicas, p->replica_count);
        fputs("\tIsr: ", stdout);
        print_ids(p->isr, p->isr_count);
        if (p->offline_count) {
            fputs("\tOffline: ", stdout);
            print_ids(p->offline_replicas, p->offline_count);
        }
        printf("\tLogStartOffset: %lld\tLogEndOffset: %lld", (long long)p->log_start_offset,
               (long long)p->log_end_offset);
        if (p->err != RN_OK)
            printf("\tError: %s", rn_err_name(p->err));
        putchar('\n');
    }
}

static int topic_list_or_describe(cli_t *cli, topic_args_t *args, bool describe)
{
    if (!cli_brokers_reachable(cli))
        return CLI_EXIT_FAIL;
    rn_admin_t *admin = cli_admin_new(cli);
    if (!admin)
        return CLI_EXIT_FAIL;
    int status = CLI_EXIT_OK;
    if (args->name) {
        const rn_topic_info_t *t = NULL;
        rn_metadata_t *md = cli_describe_topic(cli, admin, args->name, &t);
        if (md) {
            describe_one(t);
            rn_metadata_free(md);
        } else {
            status = CLI_EXIT_FAIL;
        }
        rn_admin_close(admin);
        return status;
    }
    rn_metadata_t *md = NULL;
    rn_err_t err = rn_admin_describe(admin, NULL, CLI_TIMEOUT_MS, &md);
    rn_admin_close(admin);
    if (err != RN_OK)
        return cli_report(cli, "cannot read the topic list", err, NULL);
    const rn_topic_info_t **topics = sorted_topics(md);
    for (size_t i = 0; topics && i < md->topic_count; i++) {
        if (describe)
            describe_one(topics[i]);
        else
            printf("%s\n", topics[i]->name);
    }
    free(topics);
    rn_metadata_free(md);
    if (fflush(stdout) != 0)
        status = CLI_EXIT_FAIL;
    return status;
}

int cli_topic_main(cli_t *cli, int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            fputs(topic_usage, stdout);
            return CLI_EXIT_OK;
        }
        fputs(topic_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *sub = argv[1];
    const char *configs[argc + 1];
    configs[0] = NULL;
    topic_args_t args = {.replication_factor = 1, .configs = configs};
    int rc;
    if (strcmp(sub, "create") == 0) {
        rc = parse(cli, "topic create", create_usage, argc - 1, argv + 1, &args, true, true);
        return rc >= 0 ? rc : topic_create(cli, &args);
    }
    if (strcmp(sub, "delete") == 0) {
        rc = parse(cli, "topic delete", delete_usage, argc - 1, argv + 1, &args, true, true);
        return rc >= 0 ? rc : topic_delete(cli, &args);
    }
    if (strcmp(sub, "list") == 0) {
        rc = parse(cli, "topic list", list_usage, argc - 1, argv + 1, &args, false, false);
        return rc >= 0 ? rc : topic_list_or_describe(cli, &args, false);
    }
    if (strcmp(sub, "describe") == 0) {
        rc = parse(cli, "topic describe", describe_usage, argc - 1, argv + 1, &args, true, false);
        return rc >= 0 ? rc : topic_list_or_describe(cli, &args, true);
    }
    return cli_usage_error("topic", "unknown subcommand '%s' (create, delete, list, describe)", sub);
}
