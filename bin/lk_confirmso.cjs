#!/usr/bin/env node
require("./tandem-agent.cjs");
