/*
 * fuzz_json_job.h - the fixed job fuzz_json decodes records for, and the seed records
 * gen_seeds writes for it. Kept together so the seeds name the job's columns.
 *
 * The source declares every column type once, plus a second TEXT column under a quoted,
 * case-keeping name with a space, so both key spellings reach the decoder's field lookup.
 */
#ifndef RN_FUZZ_JSON_JOB_H
#define RN_FUZZ_JSON_JOB_H

#define FUZZ_JSON_JOB                                                                        \
    "CREATE SOURCE events (user_id TEXT, \"Event Type\" TEXT, n BIGINT, value DOUBLE,\n"     \
    "                      ok BOOLEAN, ts TIMESTAMP)\n"                                      \
    "  FROM TOPIC 'events' FORMAT JSON\n"                                                    \
    "  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND;\n"                                      \
    "CREATE SINK per_user INTO STDOUT PRIMARY KEY (window_start, user_id) AS\n"              \
    "SELECT window_start, window_end, user_id, COUNT(*) AS events, SUM(value) AS total\n"    \
    "FROM TUMBLE(events, ts, INTERVAL '1' MINUTE)\n"                                         \
    "WHERE ok AND n > 0\n"                                                                   \
    "GROUP BY window_start, window_end, user_id;\n"

/* One JSON record per seed; each decodes cleanly under FUZZ_JSON_JOB (gen_seeds checks). */
static const char *const fuzz_json_seeds[] = {
    "{\"user_id\": \"user123\", \"Event Type\": \"click\", \"n\": -42, \"value\": 150, "
    "\"ok\": true, \"ts\": \"2023-10-27T10:00:00Z\"}",
    /* ids as numbers, epoch milliseconds, nulls, exponents, the extreme BIGINT */
    "{\"user_id\":123,\"Event Type\":null,\"n\":9223372036854775807,\"value\":1.5e2,"
    "\"ok\":false,\"ts\":1698400800000}",
    /* escapes (surrogate pair included), fields to skip, fraction and offset timestamps */
    "{\"user_id\":\"a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\\/\",\"Event Type\":\"page\\tview\","
    "\"extra\":{\"nested\":[1,2.5e-3,{\"x\":\"}\"},true,null]},\"n\":-9223372036854775808,"
    "\"value\":-0.30000000000000004,\"ok\":true,\"ts\":\"2023-10-27T10:00:03.250+02:00\"}",
    /* whitespace everywhere, duplicate keys (the last wins), a fractional epoch */
    " \t{ \"ts\" : 1698400800000.75 , \"n\" : 1 , \"n\" : 2 , \"value\" : 12345678901234567890 ,"
    "\n \"ok\" : false , \"user_id\" : \"\" , \"Event Type\" : \"x\" , \"event type\" : [] }\r\n",
    /* ISO-8601 without the T, without seconds, lower-case z */
    "{\"user_id\":\"u\",\"Event Type\":\"e\",\"n\":0,\"value\":5e-324,\"ok\":true,"
    "\"ts\":\"2023-10-27 10:00z\"}",
};

#endif
