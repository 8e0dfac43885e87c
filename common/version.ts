// The product version, shared by the agent, the console backend and the renderer so each can tell the
// others apart after an upgrade.
export const TANDEM_VERSION = '0.1.0';
