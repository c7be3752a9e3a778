/* daemon.h - `oscine run`: a live engine on a PortAudio stream, steered over
 * OSC (UDP, optionally TCP), with presets and a worker thread for building
 * chains. Runs in the foreground until /quit, SIGINT or SIGTERM (fading out);
 * SIGHUP reloads the preset. */
#ifndef OSCINE_OSC_DAEMON_H
#define OSCINE_OSC_DAEMON_H

typedef enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_COUNT } log_level;

typedef struct daemon_config {
    const char *chain;      /* default "passthrough" */
    const char *preset;     /* name, or NULL */
    const char *input, *output, *host_api, *client_name;
    int rate, buffer, channels;
    int osc_port;
    const char *osc_host;   /* default 127.0.0.1 */
    int tcp;
    int log_level;
    const char *model;      /* weights for the denoise stage, or NULL (search) */
    int client_timeout;     /* s without a packet before a /notify lease ends and
                             * an idle TCP connection is closed; 0: 300 */
} daemon_config;

/* Returns the process exit code. Thread: main. */
int daemon_run(const daemon_config *cfg);

#endif
