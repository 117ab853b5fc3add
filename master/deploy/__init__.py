"""Deployments: a model made by an execution becomes an HTTP endpoint.

- :mod:`.models` reads ``endpoint:`` definitions out of a commit's valohai.yaml and checks names;
- :mod:`.service` keeps deployments, versions, endpoints and aliases in MongoDB;
- :mod:`.queue` is the build queue in Redis (derived state, rebuilt from ``queued`` endpoints);
- :mod:`.context` writes the image context (Dockerfile, code, model files, the small server);
- :mod:`.builder` is the inference builder loop: build offline, push to the inference registry,
  hand the image to the deployment's target;
- :mod:`.targets` runs images: ``local`` (the Docker engine on this machine, or a process) and
  ``kubernetes`` (Deployment, Service, optional Ingress);
- :mod:`.front` is the stable front of local endpoints: one port, paths per version and alias,
  switched only once the new version answers.
"""
