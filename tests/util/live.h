/* live.h - test fixtures for the live path: a private JACK server (dummy
 * driver, no hardware), `oscine run` as a child process, a JACK client that
 * plays a buffer into the daemon and records what comes out, and a small
 * OSC client over loopback. */
#ifndef OSCINE_TEST_LIVE_H
#define OSCINE_TEST_LIVE_H

#include <lo/lo.h>
#include <stddef.h>
#include <sys/types.h>

#define LIVE_RATE 48000
#define LIVE_PERIOD 256

/* Start jackd -d dummy under a private server name (exported as
 * JACK_DEFAULT_SERVER for children). 0 on success. */
int jack_start(void);
void jack_stop(void);
/* 1 when the private server runs its clients with realtime scheduling (root,
 * or RLIMIT_RTPRIO); CI containers may not allow it. */
int jack_realtime(void);
/* cmocka teardown: kills the daemons a failed test left running, so that
 * the next test's daemon gets the JACK name "oscine" and not "oscine-01". */
int daemons_teardown(void **state);

/* Start `oscine run` with extra args (NULL-terminated) on a fresh OSC port;
 * waits until /status answers. Returns the pid, the port in *port. Its
 * stderr goes to the file at log_path. */
pid_t daemon_start(int *port, const char *log_path, ...);
/* Kill every daemon still running (a failed test leaves its own). */
void daemons_kill_all(void);
/* SIGTERM and wait; returns the exit status (or -1). */
int daemon_stop(pid_t pid, int sig);
/* Print a daemon's log file (its stderr) through cmocka, line by line. */
void daemon_show_log(const char *log_path);

/* OSC client on loopback. */
typedef struct osc_client {
    int fd;
    int port; /* daemon's */
} osc_client;
int osc_open(osc_client *c, int port);
void osc_close(osc_client *c);
/* Send a message built with lo_message; path given. */
int osc_send(osc_client *c, const char *path, lo_message m);
/* Send raw bytes. */
int osc_send_raw(osc_client *c, const void *data, size_t n);
/* Send a bundle with one message at timetag tt; takes ownership of m. */
int osc_send_bundle(osc_client *c, lo_timetag tt, const char *path, lo_message m);
/* Wait up to ms for a message with this path; returns it (caller frees) or
 * NULL. Other messages are skipped. */
lo_message osc_wait(osc_client *c, const char *path, int ms);
/* Convenience: send path with types/values and wait for /done or /fail;
 * returns 1 for /done, 0 for /fail (reason copied), -1 for timeout. */
int osc_call(osc_client *c, const char *path, char *reason, size_t rlen, const char *types, ...);
/* /get address and wait for its /value (NULL on timeout or /fail); the
 * value is argument 1 of the reply. Free it with lo_message_free. */
lo_message osc_get_value(osc_client *c, const char *address);

/* Argument i of a received message (liblo's lo_arg pointers are not
 * aligned for the union, so read them through these). */
float osc_arg_f(lo_message m, int i);
int osc_arg_i(lo_message m, int i);
const char *osc_arg_s(lo_message m, int i);

/* A JACK client that plays `play` into dest port(s) and records src port
 * into `rec` from the same cycle on. */
typedef struct jack_io jack_io;
jack_io *jio_open(const char *dest_port, const char *src_port);
/* Start playing buf (n frames, looped if loop) and recording up to cap frames. */
void jio_start(jack_io *j, const float *buf, size_t n, int loop, float *rec, size_t cap);
/* Frames recorded so far. */
size_t jio_recorded(jack_io *j);
/* Xruns the server reported since jio_start (a cycle some client missed:
 * the recording may hold a gap that is the server's, not the daemon's). */
int jio_xruns(jack_io *j);
/* Recording index <-> CLOCK_MONOTONIC (us), mapped through the recording
 * callback nearest in time, so that cycles the server skipped or ran late
 * (no realtime scheduling) do not shift the mapping. -1: nothing recorded. */
#define JIO_MAX_CB 8192
double jio_index_at(jack_io *j, double us);
double jio_time_at(jack_io *j, double index);
void jio_close(jack_io *j);

#endif
