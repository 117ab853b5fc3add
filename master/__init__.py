"""The jupyter-valohai master: REST API (Valohai v0 subset), agent API, queues, logs and reaper."""
