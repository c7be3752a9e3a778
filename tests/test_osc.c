/* test_osc.c - the OSC address table, its generated reference (docs/osc.md
 * must equal `oscine help osc`), and the preset parser. */
#include "util/util.h"

#include "osc/preset.h"
#include "osc/table.h"
#include "oscine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void test_docs_match_table(void **state)
{
    static char out[1 << 16], err[1024];
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "help", "osc", NULL), 0);
    char *doc = slurp("docs/osc.md");
    assert_non_null(doc);
    if (strcmp(doc, out))
        fail_msg("docs/osc.md differs from the address table: regenerate it with "
                 "'build/oscine help osc > docs/osc.md'");
}

static void test_table(void **state)
{
    osc_table_init();
    const char *required[] = {"/engine/gain", "/engine/bypass", "/engine/chain", "/preset/load",
                              "/preset/save", "/status", "/get", "/notify", "/quit", "/gain/db"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!osc_table_find(required[i]))
            fail_msg("address %s missing from the table", required[i]);
    /* Every stage parameter has an entry with its range. */
    for (int i = 0; i < osc_table_count(); i++) {
        const osc_entry *e = osc_table_at(i);
        assert_non_null(e->handler);
        assert_non_null(e->help);
        assert_true(e->path[0] == '/');
        if (e->types[0] == 'f' || e->types[0] == 'i') {
            assert_true(e->min <= e->def && e->def <= e->max);
        }
        for (int j = 0; j < i; j++)
            assert_string_not_equal(e->path, osc_table_at(j)->path);
    }
    assert_null(osc_table_find("/gain"));
}

static void test_preset_lines(void **state)
{
    osc_table_init();
    preset_line l;
    assert_int_equal(preset_parse_line("   # only a comment", &l), 0);
    assert_int_equal(preset_parse_line("", &l), 0);
    assert_int_equal(preset_parse_line("/gain/db -6.5  # quieter", &l), 1);
    assert_string_equal(l.e->path, "/gain/db");
    assert_float_equal(l.f, -6.5f, 0);
    assert_int_equal(preset_parse_line("/engine/chain \"passthrough,gain\"", &l), 1);
    assert_string_equal(l.s, "passthrough,gain");
    assert_int_equal(preset_parse_line("/engine/bypass 1", &l), 1);
    assert_int_equal(preset_parse_line("/engine/bypass 0.5", &l), OSCINE_E_ARG);
    assert_int_equal(preset_parse_line("/gain/db loud", &l), OSCINE_E_ARG);
    assert_int_equal(preset_parse_line("/gain/db 100", &l), OSCINE_E_RANGE);
    assert_non_null(strstr(oscine_last_error(), "-96..24"));
    assert_int_equal(preset_parse_line("/gain/db nan", &l), OSCINE_E_ARG);
    assert_int_equal(preset_parse_line("/gain/volume 1", &l), OSCINE_E_PARAM);
    assert_int_equal(preset_parse_line("/status", &l), OSCINE_E_PARAM);
    assert_non_null(strstr(oscine_last_error(), "command"));
    assert_int_equal(preset_parse_line("/engine/chain", &l), OSCINE_E_ARG);
}

/* Strings, quotes, comments and the number grammar of preset lines. */
static void test_preset_values(void **state)
{
    osc_table_init();
    preset_line l;
    /* a quoted value may hold a '#'; text after the closing quote is an error */
    assert_int_equal(preset_parse_line("/synth/model \"my#1.osw\" # a comment", &l), 1);
    assert_string_equal(l.s, "my#1.osw");
    assert_int_equal(preset_parse_line("/synth/model \"a\" b", &l), OSCINE_E_ARG);
    assert_int_equal(preset_parse_line("/synth/model \"open", &l), OSCINE_E_ARG);
    assert_int_equal(preset_parse_line("/engine/bypass#1", &l), OSCINE_E_ARG);
    /* chains: one written form, never empty */
    assert_int_equal(preset_parse_line("/engine/chain \" denoise ,  gain \"", &l), 1);
    assert_string_equal(l.s, "denoise,gain");
    assert_int_equal(preset_parse_line("/engine/chain \"\"", &l), OSCINE_E_ARG);
    assert_int_equal(preset_parse_line("/engine/chain \" , \"", &l), OSCINE_E_STAGE);
    assert_int_equal(preset_parse_line("/engine/chain gain,,gain", &l), OSCINE_E_STAGE);
    assert_int_equal(preset_parse_line("/engine/chain nosuch", &l), OSCINE_E_STAGE);
    assert_non_null(strstr(oscine_last_error(), "/engine/chain: unknown stage 'nosuch'"));
    char canon[64];
    assert_int_equal(preset_chain_canon("", canon, sizeof canon), OSCINE_E_STAGE);
    assert_int_equal(preset_chain_canon(" \t", canon, sizeof canon), OSCINE_E_STAGE);
    assert_int_equal(preset_chain_canon("gain,", canon, sizeof canon), OSCINE_E_STAGE);
    assert_int_equal(preset_chain_canon("passthrough ,gain", canon, sizeof canon), 0);
    assert_string_equal(canon, "passthrough,gain");
    /* control characters and lines of other files are refused without
     * being quoted */
    assert_int_equal(preset_parse_line("/gain/db \x1b[2J", &l), OSCINE_E_ARG);
    assert_int_equal(preset_parse_line("root:x:0:0:root:/root:/bin/bash", &l), OSCINE_E_PARAM);
    assert_null(strstr(oscine_last_error(), "root"));
    assert_int_equal(preset_parse_line("/gain/db secret-text-that-is-long-enough-to-hide", &l),
                     OSCINE_E_ARG);
    assert_null(strstr(oscine_last_error(), "secret"));
    /* numbers: decimal only, as on the command line */
    assert_int_equal(preset_parse_line("/gain/db 0x10", &l), OSCINE_E_ARG);
    assert_int_equal(preset_parse_line("/gain/db -1e1", &l), 1);
    assert_float_equal(l.f, -10.0f, 0);
    assert_int_equal(preset_parse_line("/gain/db 1e39", &l), OSCINE_E_RANGE);
    double v;
    assert_int_equal(preset_parse_number("5e-400", &v), 0);
    assert_true(v == 0.0);
    assert_int_equal(preset_parse_number("0x10", &v), -1);
    assert_int_equal(preset_parse_number("1e39", &v), -2);
}

/* One number grammar: each value is taken by a preset line exactly when
 * `oscine process --set` takes it (the command line reads them with the
 * same parser; the input file does not exist, so a value it takes fails
 * later, on the file, with exit 1). All the values but 1e39 lie in
 * /gain/db's range when they are numbers. */
static void test_number_grammar_matches_cli(void **state)
{
    osc_table_init();
    const char *vals[] = {"0x10", "0X1p3", "-6", "+3", ".5", "1e1", "1E-2", "inf", "-Infinity",
                          "nan", "5e-400", "1e39", "12abc", "--1", "0.", "1_0", "٣"};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        char line[64], out[512], err[512];
        snprintf(line, sizeof line, "/gain/db %s", vals[i]);
        preset_line l;
        int pr = preset_parse_line(line, &l);
        int cr = run_oscine(out, sizeof out, err, sizeof err, "process", "/nonexistent/in.wav",
                            "/nonexistent/out.wav", "--chain", "gain", "--set", "/gain/db",
                            vals[i], NULL);
        int preset_takes = pr == 1, cli_takes = strstr(err, "--set") == NULL;
        print_message("'%s': preset %s, --set %s (exit %d)\n", vals[i],
                      preset_takes ? "takes it" : "refuses it", cli_takes ? "takes it" : "refuses it",
                      cr);
        if (preset_takes != cli_takes)
            fail_msg("'%s': the preset parser and --set disagree", vals[i]);
        if (!cli_takes)
            assert_int_equal(cr, 2);
    }
}

static void test_preset_names_and_files(void **state)
{
    osc_table_init();
    assert_true(preset_name_ok("voice-call"));
    assert_true(preset_name_ok("my_preset2"));
    assert_false(preset_name_ok("../x"));
    assert_false(preset_name_ok("a/b"));
    assert_false(preset_name_ok(""));
    assert_false(preset_name_ok(".hidden"));
    const char *d = tmpdir_make();
    setenv("OSCINE_PRESET_PATH", d, 1);
    char path[4096];
    assert_int_equal(preset_resolve("../../etc/passwd", path, sizeof path), OSCINE_E_ARG);
    assert_int_equal(preset_resolve("nothere", path, sizeof path), OSCINE_E_IO);
    /* The local user (command line) may also give a file: a path with a '/'
     * or a name ending in .osc; a plain name is looked up as before. */
    char file[300];
    snprintf(file, sizeof file, "%s/mine.osc", d);
    FILE *pf = fopen(file, "w");
    assert_non_null(pf);
    fputs("/engine/chain gain\n", pf);
    fclose(pf);
    assert_int_equal(preset_resolve_local(file, path, sizeof path), 0);
    assert_string_equal(path, file);
    assert_int_equal(preset_resolve(file, path, sizeof path), OSCINE_E_ARG);
    assert_int_equal(preset_resolve_local("mine", path, sizeof path), 0); /* in OSCINE_PRESET_PATH */
    assert_string_equal(path, file);
    snprintf(file, sizeof file, "%s/absent.osc", d);
    assert_int_equal(preset_resolve_local(file, path, sizeof path), OSCINE_E_IO);
    assert_non_null(strstr(oscine_last_error(), "absent.osc"));
    assert_int_equal(preset_resolve_local("absent.osc", path, sizeof path), OSCINE_E_IO);
    assert_int_equal(preset_resolve_local(d, path, sizeof path), OSCINE_E_IO);
    assert_non_null(strstr(oscine_last_error(), "is a directory"));
    assert_int_equal(preset_resolve_local("nothere", path, sizeof path), OSCINE_E_IO);
    assert_int_equal(preset_resolve_local("a b", path, sizeof path), OSCINE_E_ARG);
    snprintf(file, sizeof file, "%s/mine.osc", d);
    remove(file);
    /* The shipped presets parse (resolved in ./presets after the env dir). */
    const char *shipped[] = {"passthrough", "voice-call", "podcast"};
    for (size_t i = 0; i < sizeof shipped / sizeof shipped[0]; i++) {
        preset_line lines[PRESET_MAX_LINES];
        int n;
        assert_int_equal(preset_resolve(shipped[i], path, sizeof path), 0);
        if (preset_parse_file(path, lines, PRESET_MAX_LINES, &n))
            fail_msg("%s", oscine_last_error());
        assert_true(n > 0);
    }
    /* Save, then parse back equal. */
    preset_line out[2];
    assert_int_equal(preset_parse_line("/engine/chain gain", &out[0]), 1);
    assert_int_equal(preset_parse_line("/gain/db -3.25", &out[1]), 1);
    assert_int_equal(preset_save("roundtrip", out, 2, path, sizeof path), 0);
    preset_line back[PRESET_MAX_LINES];
    int n;
    assert_int_equal(preset_parse_file(path, back, PRESET_MAX_LINES, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(back[0].s, "gain");
    assert_float_equal(back[1].f, -3.25f, 0);
    /* An error names the file and the line. */
    char bad[4200];
    snprintf(bad, sizeof bad, "%s/bad.osc", d);
    FILE *f = fopen(bad, "w");
    fputs("/gain/db -3\n\n/engine/gain 99\n", f);
    fclose(f);
    assert_int_equal(preset_parse_file(bad, back, PRESET_MAX_LINES, &n), OSCINE_E_RANGE);
    assert_non_null(strstr(oscine_last_error(), "bad.osc"));
    assert_non_null(strstr(oscine_last_error(), "line 3"));
    /* A binary file is not taken for a text one with a long line. */
    f = fopen(bad, "wb");
    fwrite("/gain/db -3\n\xff\xfe\0x\n", 1, 17, f);
    fclose(f);
    assert_int_equal(preset_parse_file(bad, back, PRESET_MAX_LINES, &n), OSCINE_E_ARG);
    assert_non_null(strstr(oscine_last_error(), "line 2: a NUL byte"));
    f = fopen(bad, "w");
    fputs("/gain/db -3 #", f);
    for (int i = 0; i < 5000; i++)
        fputc('x', f);
    fputs("\n", f);
    fclose(f);
    assert_int_equal(preset_parse_file(bad, back, PRESET_MAX_LINES, &n), OSCINE_E_ARG);
    assert_non_null(strstr(oscine_last_error(), "line 1: line too long (5013 bytes; at most 4095)"));
    /* A line of 600 bytes is read whole (it was cut at 511: the chain lost
     * its last stage). */
    f = fopen(bad, "w");
    fputs("/engine/gain -1\n/engine/chain passthrough", f);
    for (int i = 0; i < 570; i++)
        fputc(' ', f);
    fputs(", gain\n", f);
    fclose(f);
    assert_int_equal(preset_parse_file(bad, back, PRESET_MAX_LINES, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(back[1].s, "passthrough,gain");
    unsetenv("OSCINE_PRESET_PATH");
    tmpdir_remove(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docs_match_table),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_preset_lines),
        cmocka_unit_test(test_preset_values),
        cmocka_unit_test(test_number_grammar_matches_cli),
        cmocka_unit_test(test_preset_names_and_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
