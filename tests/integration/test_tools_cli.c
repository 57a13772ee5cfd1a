/*
 * test_tools_cli.c - the `runnel` CLI against a real broker: topic lifecycle, produce and
 * consume with every -o form, -c, -f, -J, -K, --key-field, headers, -X, offsets; a refused
 * record's exit status; the progress line on a terminal; and the command line itself: bad
 * flags exit 2 naming the flag, an unreachable broker exits 1 saying so (also the default
 * 127.0.0.1:9092), --help and --version everywhere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_tools_util.h"

#define CLI "RUNNEL_CLI_BIN"

static rn_hbroker_t broker;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int group_setup(void **state)
{
    (void)state;
    return tt_broker_start(&broker);
}

static int group_teardown(void **state)
{
    (void)state;
    int status = tt_broker_stop(&broker);
    tt_cleanup();
    return status == 0 ? 0 : -1;
}

/* Produces the lines of text to topic with extra arguments; asserts success. */
static void produce_text(const char *topic, const char *text, const char *extra1,
                         const char *extra2)
{
    const char *in = tt_path("produce.in");
    write_file(in, text);
    tt_run_t r = extra2   ? tt_run(CLI, in, "produce", "-t", topic, extra1, extra2, NULL)
                 : extra1 ? tt_run(CLI, in, "produce", "-t", topic, extra1, NULL)
                          : tt_run(CLI, in, "produce", "-t", topic, NULL);
    EXPECT_STATUS(r, 0, "produce");
    tt_run_free(&r);
}

static void create_topic(const char *name, const char *partitions)
{
    tt_run_t r = tt_run(CLI, NULL, "topic", "create", name, "--partitions", partitions, NULL);
    EXPECT_STATUS(r, 0, "topic create");
    tt_run_free(&r);
}

/* ------------------------------------------------------------------------------------ */

static void test_topic_lifecycle(void **state)
{
    (void)state;
    tt_run_t r = tt_run(CLI, NULL, "topic", "create", "life", "--partitions", "3", "--config",
                        "retention.ms=3600000", NULL);
    EXPECT_STATUS(r, 0, "create");
    assert_string_equal(r.out, "Created topic life.\n");
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "topic", "create", "life", "--partitions", "3", NULL);
    EXPECT_STATUS(r, 1, "create again");
    assert_non_null(strstr(r.err, "already exists"));
    assert_non_null(strstr(r.err, "--if-not-exists"));
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "topic", "create", "life", "--partitions", "3", "--if-not-exists", NULL);
    EXPECT_STATUS(r, 0, "create --if-not-exists");
    assert_string_equal(r.out, "");
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "topic", "describe", "life", NULL);
    EXPECT_STATUS(r, 0, "describe");
    assert_non_null(strstr(r.out, "Topic: life\tPartitionCount: 3\tReplicationFactor: 1\tConfigs:"));
    assert_non_null(strstr(r.out, "retention.ms=3600000"));
    for (int p = 0; p < 3; p++) {
        char want[128];
        snprintf(want, sizeof want,
                 "\tTopic: life\tPartition: %d\tLeader: 1\tReplicas: 1\tIsr: 1\tLogStartOffset: 0"
                 "\tLogEndOffset: 0\n",
                 p);
        if (!strstr(r.out, want))
            tt_dump("describe output", &r);
        assert_non_null(strstr(r.out, want));
    }
    assert_int_equal(tt_count_lines(r.out), 4);
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "topic", "list", NULL);
    EXPECT_STATUS(r, 0, "list");
    assert_non_null(strstr(r.out, "life\n"));
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "topic", "describe", NULL);
    EXPECT_STATUS(r, 0, "describe all");
    assert_non_null(strstr(r.out, "Topic: life\t"));
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "topic", "delete", "life", NULL);
    EXPECT_STATUS(r, 0, "delete");
    assert_string_equal(r.out, "Deleted topic life.\n");
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "topic", "describe", "life", NULL);
    EXPECT_STATUS(r, 1, "describe deleted");
    assert_non_null(strstr(r.err, "topic 'life' does not exist"));
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "topic", "list", NULL);
    EXPECT_STATUS(r, 0, "list after delete");
    assert_null(strstr(r.out, "life\n"));
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "topic", "delete", "life", NULL);
    EXPECT_STATUS(r, 1, "delete missing");
    assert_non_null(strstr(r.err, "does not exist"));
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "topic", "delete", "life", "--if-exists", NULL);
    EXPECT_STATUS(r, 0, "delete --if-exists");
    tt_run_free(&r);

    /* The name may be given as --topic, kafka-topics style, and recreated after deletion. */
    r = tt_run(CLI, NULL, "topic", "create", "--topic", "life", "--partitions", "1", NULL);
    EXPECT_STATUS(r, 0, "create --topic");
    tt_run_free(&r);

    /* --replication-factor: 1 is what a single node has; more is refused, saying why. */
    r = tt_run(CLI, NULL, "topic", "create", "rf1", "--partitions", "1", "--replication-factor",
               "1", NULL);
    EXPECT_STATUS(r, 0, "create --replication-factor 1");
    tt_run_free(&r);
    r = tt_run(CLI, NULL, "topic", "create", "rf2", "--partitions", "1", "--replication-factor",
               "2", NULL);
    EXPECT_STATUS(r, 1, "create --replication-factor 2");
    assert_non_null(strstr(r.err, "replication factor"));
    assert_non_null(strstr(r.err, "rf2"));
    tt_run_free(&r);
}

static void test_consume_offsets(void **state)
{
    (void)state;
    create_topic("off", "1");
    char text[2048] = "";
    for (int i = 0; i < 50; i++)
        sprintf(text + strlen(text), "v%d\n", i);
    produce_text("off", text, NULL, NULL);
    sleep_ms(30);
    int64_t mid = now_ms();
    sleep_ms(30);
    text[0] = '\0';
    for (int i = 50; i < 100; i++)
        sprintf(text + strlen(text), "v%d\n", i);
    produce_text("off", text, "--acks", "1");

    static const struct {
        const char *offset;
        int first, count;
    } cases[] = {
        {"beginning", 0, 100}, {"earliest", 0, 100}, {"end", 0, 0},  {"90", 90, 10},
        {"0", 0, 100},         {"-5", 95, 5},        {"-500", 0, 100}, {"1000", 0, 0},
        {NULL, 50, 50}, /* @mid */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char at[32];
        snprintf(at, sizeof at, "@%lld", (long long)mid);
        const char *o = cases[c].offset ? cases[c].offset : at;
        tt_run_t r = tt_run(CLI, NULL, "consume", "-t", "off", "-o", o, "-e", NULL);
        EXPECT_STATUS(r, 0, o);
        char want[2048] = "";
        for (int i = cases[c].first; i < cases[c].first + cases[c].count; i++)
            sprintf(want + strlen(want), "v%d\n", i);
        if (strcmp(r.out, want) != 0) {
            fprintf(stderr, "-o %s: want %d records from v%d\n", o, cases[c].count,
                    cases[c].first);
            tt_dump(o, &r);
        }
        assert_string_equal(r.out, want);
        tt_run_free(&r);
    }

    tt_run_t r = tt_run(CLI, NULL, "consume", "-t", "off", "-c", "3", NULL);
    EXPECT_STATUS(r, 0, "-c 3");
    assert_string_equal(r.out, "v0\nv1\nv2\n");
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "consume", "-t", "off", "-o", "7", "-c", "2", "-f",
               "%t|%p|%o|%k|%s|%S|%K|%%\\n", NULL);
    EXPECT_STATUS(r, 0, "-f");
    assert_string_equal(r.out, "off|0|7||v7|2|-1|%\noff|0|8||v8|2|-1|%\n");
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "offsets", "-t", "off", NULL);
    EXPECT_STATUS(r, 0, "offsets");
    assert_string_equal(r.out, "Topic: off\tPartition: 0\tEarliest: 0\tLatest: 100\n");
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "consume", "-t", "off", "-p", "3", "-e", NULL);
    EXPECT_STATUS(r, 1, "missing partition");
    assert_non_null(strstr(r.err, "no partition 3"));
    tt_run_free(&r);
}

static void test_keys_json_headers(void **state)
{
    (void)state;
    create_topic("keyed", "4");
    produce_text("keyed",
                 "{\"user_id\":\"u1\",\"v\":1}\n"
                 "{\"v\":2,\"user_id\":\"u\\\"2\"}\n"
                 "{\"user_id\":42,\"v\":3}\n"
                 "{\"v\":4}\n"
                 "\n",
                 "--key-field", "user_id");
    tt_run_t r = tt_run(CLI, NULL, "consume", "-t", "keyed", "-e", "-f", "%k=%s\\n", NULL);
    EXPECT_STATUS(r, 0, "consume keyed");
    assert_int_equal(tt_count_lines(r.out), 4); /* the empty line was skipped */
    assert_non_null(strstr(r.out, "u1={\"user_id\":\"u1\",\"v\":1}\n"));
    assert_non_null(strstr(r.out, "u\"2={\"v\":2,\"user_id\":\"u\\\"2\"}\n"));
    assert_non_null(strstr(r.out, "42={\"user_id\":42,\"v\":3}\n"));
    assert_non_null(strstr(r.out, "={\"v\":4}\n"));
    tt_run_free(&r);

    create_topic("hdr", "1");
    const char *in = tt_path("hdr.in");
    write_file(in, "k1:tab\there \"quoted\" \\ back\nnokey\n");
    r = tt_run(CLI, in, "produce", "-t", "hdr", "-K", ":", "-H", "trace=abc", "-H", "src=test",
               NULL);
    EXPECT_STATUS(r, 0, "produce -K -H");
    assert_non_null(strstr(r.err, "2 records"));
    tt_run_free(&r);
    r = tt_run(CLI, NULL, "consume", "-t", "hdr", "-e", "-J", NULL);
    EXPECT_STATUS(r, 0, "consume -J");
    char want0[512];
    snprintf(want0, sizeof want0,
             "{\"topic\":\"hdr\",\"partition\":0,\"offset\":0,\"timestamp\":");
    assert_memory_equal(r.out, want0, strlen(want0));
    assert_non_null(strstr(r.out, ",\"key\":\"k1\",\"value\":\"tab\\there \\\"quoted\\\" \\\\ back\","
                                  "\"headers\":[\"trace\",\"abc\",\"src\",\"test\"]}\n"));
    assert_non_null(strstr(r.out, ",\"key\":null,\"value\":\"nokey\","));
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "consume", "-t", "hdr", "-e", "-K", " => ", NULL);
    EXPECT_STATUS(r, 0, "consume -K");
    assert_string_equal(r.out, "k1 => tab\there \"quoted\" \\ back\n => nokey\n");
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "consume", "-t", "hdr", "-e", "-f", "%h\\n", NULL);
    EXPECT_STATUS(r, 0, "consume %h");
    assert_string_equal(r.out, "trace=abc,src=test\ntrace=abc,src=test\n");
    tt_run_free(&r);

    /* -p sends everything to one partition. */
    produce_text("keyed", "a\nb\nc\n", "-p", "2");
    r = tt_run(CLI, NULL, "consume", "-t", "keyed", "-p", "2", "-o", "-3", "-e", NULL);
    EXPECT_STATUS(r, 0, "consume -p 2");
    assert_string_equal(r.out, "a\nb\nc\n");
    tt_run_free(&r);
}

static void test_produce_errors(void **state)
{
    (void)state;
    tt_run_t r = tt_run(CLI, NULL, "produce", "-t", "no-such-topic", NULL);
    EXPECT_STATUS(r, 1, "produce to a missing topic");
    assert_non_null(strstr(r.err, "topic 'no-such-topic' does not exist"));
    assert_non_null(strstr(r.err, "runnel topic create"));
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "consume", "-t", "no-such-topic", "-e", NULL);
    EXPECT_STATUS(r, 1, "consume a missing topic");
    assert_non_null(strstr(r.err, "does not exist"));
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "produce", "-t", "off", "-l", "/nonexistent/input", NULL);
    EXPECT_STATUS(r, 1, "produce from a missing file");
    assert_non_null(strstr(r.err, "/nonexistent/input"));
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "produce", "-t", "off", "-p", "9", NULL);
    EXPECT_STATUS(r, 1, "produce to a missing partition");
    assert_non_null(strstr(r.err, "no partition 9"));
    tt_run_free(&r);
}

/*
 * A record the broker refuses (larger than the topic's max.message.bytes) makes produce exit 1,
 * with the summary counting it and a message naming the error and what to do. -X passes
 * producer settings through to the library.
 */
static void test_produce_record_failures_and_properties(void **state)
{
    (void)state;
    tt_run_t r = tt_run(CLI, NULL, "topic", "create", "tiny", "--partitions", "1", "--config",
                        "max.message.bytes=1000", NULL);
    EXPECT_STATUS(r, 0, "create tiny");
    tt_run_free(&r);
    char *big = malloc(3002);
    memset(big, 'x', 3000);
    big[3000] = '\n';
    big[3001] = '\0';
    const char *in = tt_path("big.in");
    write_file(in, big);
    free(big);
    r = tt_run(CLI, in, "produce", "-t", "tiny", NULL);
    EXPECT_STATUS(r, 1, "produce a too large record");
    assert_non_null(strstr(r.err, "0 records"));
    assert_non_null(strstr(r.err, "; 1 failed"));
    assert_non_null(strstr(r.err, "max.message.bytes"));
    tt_run_free(&r);

    in = tt_path("props.in");
    write_file(in, "p1\np2\np3\n");
    r = tt_run(CLI, in, "produce", "-t", "tiny", "-X", "linger.ms=0", "-X",
               "compression.type=zstd", "-X", "enable.idempotence=false", NULL);
    EXPECT_STATUS(r, 0, "produce -X");
    assert_non_null(strstr(r.err, "3 records"));
    tt_run_free(&r);
    r = tt_run(CLI, NULL, "consume", "-t", "tiny", "-e", NULL);
    EXPECT_STATUS(r, 0, "consume what -X produced");
    assert_string_equal(r.out, "p1\np2\np3\n");
    tt_run_free(&r);
}

/*
 * With stderr on a terminal, produce shows a progress line (records, MB, rate) each second,
 * which the summary then replaces. Lines trickle in for about 2.5 s so two updates are due.
 */
static void test_progress_on_a_terminal(void **state)
{
    (void)state;
    create_topic("tty", "1");
    int master, slave;
    assert_int_equal(openpty(&master, &slave, NULL, NULL, NULL), 0);
    int in[2];
    assert_int_equal(pipe(in), 0);
    const char *bin = rn_h_bin(CLI);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(slave, 2);
        close(in[1]);
        close(master);
        execl(bin, bin, "produce", "-t", "tty", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(slave);
    for (int i = 0; i < 25; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "line %d\n", i);
        assert_int_equal(write(in[1], line, (size_t)n), n);
        sleep_ms(100);
    }
    close(in[1]);
    int status = -1;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    char out[8192];
    size_t len = 0;
    for (;;) { /* the child is gone: read what the terminal holds, until EIO */
        struct pollfd pfd = {master, POLLIN, 0};
        if (len + 1 >= sizeof out || poll(&pfd, 1, 200) <= 0)
            break;
        ssize_t n = read(master, out + len, sizeof out - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(master);
    out[len] = '\0';
    if (!strstr(out, "records acknowledged"))
        fprintf(stderr, "terminal output: %s\n", out);
    assert_non_null(strstr(out, "records acknowledged, "));
    assert_non_null(strstr(out, " MB read, "));
    assert_non_null(strstr(out, " records/s"));
    assert_non_null(strstr(out, "\r\033[K")); /* each update overwrites the line */
    assert_non_null(strstr(out, "runnel produce: 25 records"));
}

/* Each bad command line exits 2 and names the offending flag on stderr. */
static void test_bad_flags(void **state)
{
    (void)state;
    static const struct {
        const char *args[8];
        const char *must_name;
    } cases[] = {
        {{"produce", "-t", "x", "--bogus", NULL}, "--bogus"},
        {{"produce", "-t", "x", "-Z", NULL}, "-Z"},
        {{"produce", NULL}, "-t"},
        {{"produce", "-t", "x", "--acks", "2", NULL}, "--acks"},
        {{"produce", "-t", "x", "-p", "one", NULL}, "-p"},
        {{"produce", "-t", "x", "-X", "no.such.setting=1", NULL}, "no.such.setting"},
        {{"produce", "-t", "x", "-K", ":", "--key-field", "id", NULL}, "--key-field"},
        {{"consume", "-t", "x", "-o", "sideways", NULL}, "-o"},
        {{"consume", "-t", "x", "-c", NULL}, "-c"},
        {{"consume", "-t", "x", "-c", "0", NULL}, "-c"},
        {{"consume", "-t", "x", "-f", "%q", NULL}, "%q"},
        {{"consume", "-t", "x", "--offset=", NULL}, "-o"},
        {{"consume", "-t", "x", "-J", "-f", "%s", NULL}, "-J"},
        {{"topic", "create", "x", NULL}, "--partitions"},
        {{"topic", "create", "x", "--partitions", "zero", NULL}, "--partitions"},
        {{"topic", "create", "x", "--partitions", "1", "--config", "novalue", NULL}, "--config"},
        {{"topic", "create", NULL}, "NAME"},
        {{"topic", "frobnicate", NULL}, "frobnicate"},
        {{"topic", "delete", "x", "--partitions", "3", NULL}, "--partitions"},
        {{"offsets", NULL}, "-t"},
        {{"offsets", "-t", "x", "--what", NULL}, "--what"},
        {{"frobnicate", NULL}, "frobnicate"},
        {{"-Q", "topic", "list", NULL}, "-Q"},
        {{"-b", "nocolon", "topic", "list", NULL}, "-b"},
        {{"topic", "list", "-b", "host:notaport", NULL}, "-b"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *const *a = cases[c].args;
        tt_run_t r = tt_run(CLI, NULL, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], NULL);
        bool ok = r.status == 2 && strstr(r.err, cases[c].must_name) && r.out_len == 0;
        if (!ok) {
            fprintf(stderr, "case %zu: want exit 2 and a message naming '%s'\n", c,
                    cases[c].must_name);
            tt_dump(a[0], &r);
        }
        assert_true(ok);
        tt_run_free(&r);
    }
}

static void test_help_and_version(void **state)
{
    (void)state;
    static const char *const cmds[][3] = {
        {"--help", NULL, NULL},          {"-h", NULL, NULL},
        {"topic", "--help", NULL},       {"topic", "create", "--help"},
        {"topic", "delete", "--help"},   {"topic", "list", "--help"},
        {"topic", "describe", "--help"}, {"produce", "--help", NULL},
        {"consume", "--help", NULL},     {"offsets", "--help", NULL},
        {"help", "consume", NULL},
    };
    for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
        tt_run_t r = tt_run(CLI, NULL, cmds[c][0], cmds[c][1], cmds[c][2], NULL);
        EXPECT_STATUS(r, 0, cmds[c][0]);
        assert_non_null(strstr(r.out, "Usage: runnel"));
        tt_run_free(&r);
    }
    tt_run_t r = tt_run(CLI, NULL, "--version", NULL);
    EXPECT_STATUS(r, 0, "--version");
    assert_memory_equal(r.out, "runnel ", 7);
    tt_run_free(&r);
    r = tt_run(CLI, NULL, NULL);
    EXPECT_STATUS(r, 2, "no command");
    assert_non_null(strstr(r.err, "Usage: runnel"));
    tt_run_free(&r);
}

static void test_unreachable_broker(void **state)
{
    (void)state;
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", tt_closed_port());
    static const char *const cmds[][4] = {
        {"topic", "list", NULL, NULL},
        {"topic", "create", "x", "--partitions"},
        {"produce", "-t", "x", NULL},
        {"consume", "-t", "x", NULL},
        {"offsets", "-t", "x", NULL},
    };
    for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
        const char *last = c == 1 ? "1" : NULL;
        tt_run_t r = tt_run(CLI, NULL, "-b", addr, cmds[c][0], cmds[c][1], cmds[c][2],
                            cmds[c][3], last, NULL);
        char want[128];
        snprintf(want, sizeof want, "cannot reach broker %s: connection refused", addr);
        bool ok = r.status == 1 && strstr(r.err, want) && strstr(r.err, "runnel-broker running") &&
                  strstr(r.err, "RUNNEL_BROKERS");
        if (!ok)
            tt_dump(cmds[c][0], &r);
        assert_true(ok);
        tt_run_free(&r);
    }

    /* The same through RUNNEL_BROKERS, which the message names as the source. */
    char *saved = strdup(getenv("RUNNEL_BROKERS"));
    setenv("RUNNEL_BROKERS", addr, 1);
    tt_run_t r = tt_run(CLI, NULL, "topic", "list", NULL);
    setenv("RUNNEL_BROKERS", saved, 1);
    free(saved);
    EXPECT_STATUS(r, 1, "RUNNEL_BROKERS unreachable");
    assert_non_null(strstr(r.err, "from RUNNEL_BROKERS"));
    tt_run_free(&r);

    /* Neither -b nor RUNNEL_BROKERS: 127.0.0.1:9092, named as the default (checked only
     * when nothing listens there on this machine). */
    int probe = rn_h_connect("127.0.0.1:9092");
    if (probe >= 0) {
        close(probe);
        fprintf(stderr, "something listens on 127.0.0.1:9092; default -b not checked\n");
    } else {
        saved = strdup(getenv("RUNNEL_BROKERS"));
        unsetenv("RUNNEL_BROKERS");
        r = tt_run(CLI, NULL, "topic", "list", NULL);
        setenv("RUNNEL_BROKERS", saved, 1);
        free(saved);
        EXPECT_STATUS(r, 1, "default brokers unreachable");
        assert_non_null(strstr(r.err, "cannot reach broker 127.0.0.1:9092"));
        assert_non_null(strstr(r.err, "from default"));
        tt_run_free(&r);
    }

    /* -b after the command works too, and wins over RUNNEL_BROKERS. */
    r = tt_run(CLI, NULL, "topic", "list", "-b", addr, NULL);
    EXPECT_STATUS(r, 1, "-b after the command");
    assert_non_null(strstr(r.err, addr));
    tt_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_topic_lifecycle),
        cmocka_unit_test(test_consume_offsets),
        cmocka_unit_test(test_keys_json_headers),
        cmocka_unit_test(test_produce_errors),
        cmocka_unit_test(test_produce_record_failures_and_properties),
        cmocka_unit_test(test_progress_on_a_terminal),
        cmocka_unit_test(test_unreachable_broker),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
