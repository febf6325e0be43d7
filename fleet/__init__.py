"""spotscribe operations library: AWS (moto or real), Docker images, hosts, deploys. Never imports pytest."""
