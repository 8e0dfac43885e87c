// The console API: the one contract between the renderer and the console backend, whether the backend
// runs in Electron's main process (IPC through the preload) or as the browser-mode server (WebSocket).
// Every argument is described by a zod schema so both entry points validate it the same way.
import { z } from 'zod';
import type { MirrorStatus, ReplicationMode } from './mirror-status.js';
import type { HierarchyRequest } from './hierarchy.js';
import { checkResourceDatabase, MAX_PRIORITY, MAX_RESOURCES, MAX_SERVERS, MIN_PRIORITY, ResourceDatabaseError, TAG_PATTERN, type ResourceDatabase } from './resource-database.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export interface ReplicationPairForm {
  /** The existing server paired with the new target. */
  other: string;
  /** The address pair from the comm paths: [target side, other side]. */
  addresses: [string, string];
  mode: ReplicationMode;
}

/** The Pre-Extend Wizard's answers (wizard-rules.ts checks them; the backend's extendHierarchy takes them). */
export interface ExtendForm {
  templateServer: string;
  tag: string;
  targetServer: string;
  switchback: 'intelligent' | 'automatic';
  /** Only on the first extend of the hierarchy (null otherwise). */
  templatePriority: number | null;
  targetPriority: number;
  /** Only with a file system over the mirror. */
  mountPoint: string;
  rootTag: string;
  targetDisk: string;
  dataKeeperTag: string;
  bitmapFile: string;
  pairs: ReplicationPairForm[];
}

export const serverName = z.string().regex(NAME, 'a server name is 1–63 letters, digits, ".", "_" or "-", starting with a letter or digit');
const hostName = z.string().min(1).max(253).regex(/^[A-Za-z0-9.:_-]+$/, 'a host is a DNS name or an IP address');
const port = z.number().int().min(1).max(65535);
const userName = z.string().regex(/^[a-z_][a-z0-9_.-]{0,31}\$?$/i, 'a user name is letters, digits, "_", "." or "-"');

/** Tried in the order given. */
export const authMethod = z.enum(['agent', 'key', 'password', 'keyboard-interactive']);
export type AuthMethod = z.infer<typeof authMethod>;

export const sshEndpoint = z.object({
  host: hostName,
  port: port.default(22),
  user: userName.default('root'),
  auth: z.array(authMethod).min(1).max(4).default(['agent', 'key']),
  /** A private key file on the console's machine (absolute path). */
  keyFile: z.string().max(4096).optional(),
}).strict();
export type SshEndpoint = z.infer<typeof sshEndpoint>;

export const sshSettings = sshEndpoint.extend({
  jumpHost: sshEndpoint.nullable().optional(),
  keepaliveSeconds: z.number().int().min(0).max(3600).default(15),
}).strict();
export type SshSettings = z.infer<typeof sshSettings>;

/** A server of the cluster; its name is the agent's node name. */
export const serverDefinition = z.object({
  name: serverName,
  ssh: sshSettings,
}).strict();
export type ServerDefinition = z.infer<typeof serverDefinition>;
export type ServerDefinitionInput = z.input<typeof serverDefinition>;

/** A communication path between two servers: the addresses replication uses. */
export const commPath = z.object({
  servers: z.tuple([serverName, serverName]),
  addresses: z.tuple([hostName, hostName]),
}).strict();
export type CommPath = z.infer<typeof commPath>;

export const clusterDefinition = z.object({
  version: z.literal(1),
  name: serverName,
  servers: z.array(serverDefinition).max(64),
  commPaths: z.array(commPath).max(2016),
}).strict();
export type ClusterDefinition = z.infer<typeof clusterDefinition>;

/** The resource database as the console API takes it: the shape here, the rules across fields
 * (unique tags and priorities, dependencies that exist, no cycles) by the checker the agents use. */
const tag = z.string().regex(TAG_PATTERN, 'a tag is letters, digits, dot, dash, underscore (up to 64, starting with a letter or digit)');
export const resourceDatabase = z.object({
  version: z.number().int().min(0),
  resources: z.array(z.object({
    tag,
    kind: z.enum(['datakeeper', 'filesystem', 'generic']),
    mountPoint: z.string().max(4096).optional(),
    fstype: z.string().max(16).optional(),
    dependsOn: z.array(tag).max(MAX_RESOURCES),
    instances: z.array(z.object({ server: serverName, priority: z.number().int().min(MIN_PRIORITY).max(MAX_PRIORITY) }).strict()).max(MAX_SERVERS),
    switchback: z.literal('intelligent'),
  }).strict()).max(MAX_RESOURCES),
  flags: z.array(z.object({
    server: serverName,
    confirmFailoverFrom: z.array(serverName).max(MAX_SERVERS),
    blockResourceFailover: z.boolean(),
  }).strict()).max(MAX_SERVERS),
}).strict().superRefine((db, ctx) => {
  try {
    checkResourceDatabase(db);
  } catch (err) {
    if (!(err instanceof ResourceDatabaseError)) throw err;
    ctx.addIssue({ code: 'custom', message: err.problem, path: err.field.split('.').map((x) => (/^\d+$/.test(x) ? Number(x) : x)) });
  }
});

// ---- what the console shows ----

export type ConnectionState = 'disconnected' | 'connecting' | 'connected' | 'reconnecting' | 'unreachable' | 'failed';

export interface ServerView {
  name: string;
  /** "host:port" for SSH servers, "local" for local-lab nodes. */
  address: string;
  kind: 'ssh' | 'local';
  connection: { state: ConnectionState; message: string; since: number };
  agent: { version: string | null; running: boolean };
  mirrors: MirrorStatus[];
}

export interface ClusterView {
  name: string;
  mode: 'none' | 'local-lab' | 'ssh';
  servers: ServerView[];
  commPaths: CommPath[];
  /** The highest-version copy of the resource database among the connected agents. */
  resources: ResourceDatabase;
}

// ---- questions the backend asks the user ----

export type PromptKind = 'host-key' | 'password' | 'passphrase' | 'keyboard-interactive' | 'sudo-password';

export interface Prompt {
  id: string;
  server: string;
  kind: PromptKind;
  /** What to show, in words. */
  message: string;
  /** host-key: the key type and SHA256 fingerprint to compare with the server's. */
  keyType?: string;
  fingerprint?: string;
  /** keyboard-interactive: the server's questions. */
  questions?: Array<{ prompt: string; echo: boolean }>;
}

export const promptAnswer = z.union([
  z.object({ accept: z.boolean() }).strict(),
  z.object({ secret: z.string().max(4096).nullable() }).strict(),
  z.object({ answers: z.array(z.string().max(4096)).max(16).nullable() }).strict(),
]);
export type PromptAnswer = z.infer<typeof promptAnswer>;

// ---- deployment ----

export type DeployStepName = 'connect' | 'check-os' | 'check-node' | 'upload' | 'verify' | 'install' | 'certificate' | 'start' | 'check-version';

export interface DeployProgress {
  server: string;
  step: DeployStepName;
  state: 'running' | 'done' | 'failed' | 'skipped';
  message: string;
  /** upload: bytes sent of total. */
  done?: number;
  total?: number;
}

// ---- the output panel ----

export interface OutputEntry {
  time: number;
  server: string;
  /** What was done, in the GUI's words. */
  action: string;
  /** The equivalent command on the node. */
  command: string;
  ok: boolean;
  message: string;
}

export type ConsoleEvent =
  | { type: 'cluster'; cluster: ClusterView }
  | { type: 'prompt'; prompt: Prompt }
  | { type: 'prompt-closed'; id: string }
  | { type: 'deploy'; progress: DeployProgress }
  | { type: 'output'; entry: OutputEntry };

// ---- the hierarchy wizards' actions ----

const absolutePath = z.string().max(4096).regex(/^\//, 'an absolute path');
const priority = z.number().int().min(MIN_PRIORITY).max(MAX_PRIORITY);

/** Create Resource Hierarchy (common/hierarchy.ts's HierarchyRequest). */
export const hierarchyRequest = z.object({
  type: z.enum(['new', 'existing', 'device']),
  switchback: z.enum(['intelligent', 'automatic']),
  server: serverName,
  sourceDisk: absolutePath.optional(),
  mountPoint: absolutePath.optional(),
  fileSystemType: z.enum(['ext4', 'ext3', 'xfs']).optional(),
  dataKeeperTag: tag,
  fileSystemTag: tag.optional(),
  bitmapFile: z.union([z.literal('none'), absolutePath]),
  asyncReplication: z.boolean(),
}).strict();

/** Pre-Extend and Extend (common/wizard-rules.ts's ExtendForm). */
export const extendRequest = z.object({
  templateServer: serverName,
  tag,
  targetServer: serverName,
  switchback: z.enum(['intelligent', 'automatic']),
  templatePriority: priority.nullable(),
  targetPriority: priority,
  mountPoint: z.string().max(4096),
  rootTag: z.string().max(64),
  targetDisk: absolutePath,
  dataKeeperTag: tag,
  bitmapFile: z.union([z.literal('none'), absolutePath]),
  pairs: z.array(z.object({ other: serverName, addresses: z.tuple([hostName, hostName]), mode: z.enum(['sync', 'async']) }).strict()).max(63),
}).strict();

// ---- the methods ----

const agentMethod = z.string().regex(/^(agent|mirror|resource)\.[a-z]+$/, 'an agent method is like "mirror.status"');

/** Argument schemas per method (a tuple each), used by main.ts's IPC handlers and the browser-mode server. */
export const consoleMethods = {
  cluster: z.tuple([]),
  addServer: z.tuple([serverDefinition]),
  removeServer: z.tuple([serverName]),
  setCommPath: z.tuple([commPath]),
  connect: z.tuple([serverName]),
  disconnect: z.tuple([serverName]),
  answerPrompt: z.tuple([z.string().regex(/^[a-z0-9-]{1,64}$/), promptAnswer]),
  deploy: z.tuple([serverName]),
  uninstall: z.tuple([serverName]),
  agentCall: z.tuple([serverName, agentMethod, z.record(z.string(), z.unknown())]),
  openLocalLab: z.tuple([z.number().int().min(2).max(8)]),
  closeLocalLab: z.tuple([]),
  output: z.tuple([]),
  /** From the user's OpenSSH known_hosts (default ~/.ssh/known_hosts), hashed entries included. */
  importKnownHosts: z.tuple([z.string().max(4096).nullable()]),
  resourceDatabase: z.tuple([]),
  /** The database as the caller wants it, with the version it read (saved as version + 1). */
  saveResourceDatabase: z.tuple([resourceDatabase]),
  createHierarchy: z.tuple([hierarchyRequest]),
  extendHierarchy: z.tuple([extendRequest]),
  unextendHierarchy: z.tuple([tag, serverName]),
  deleteHierarchy: z.tuple([tag]),
  inService: z.tuple([tag, serverName]),
  outOfService: z.tuple([tag, serverName]),
  createDependency: z.tuple([tag, tag]),
  deleteDependency: z.tuple([tag, tag]),
} as const;

export type ConsoleMethod = keyof typeof consoleMethods;

export interface ConsoleApi {
  cluster(): Promise<ClusterView>;
  addServer(server: ServerDefinitionInput): Promise<ClusterView>;
  removeServer(name: string): Promise<ClusterView>;
  setCommPath(path: CommPath): Promise<ClusterView>;
  connect(name: string): Promise<ServerView>;
  disconnect(name: string): Promise<ServerView>;
  answerPrompt(id: string, answer: PromptAnswer): Promise<void>;
  deploy(name: string): Promise<ServerView>;
  uninstall(name: string): Promise<ServerView>;
  /** One JSON-RPC call to a node's agent (`tandem ctl` over SSH, or the local socket in the local lab). */
  agentCall(server: string, method: string, params: Record<string, unknown>): Promise<unknown>;
  /** Starts N agents on this machine with file-backed disks (the local lab) and makes it the cluster. */
  openLocalLab(nodes: number): Promise<ClusterView>;
  closeLocalLab(): Promise<ClusterView>;
  output(): Promise<OutputEntry[]>;
  importKnownHosts(file: string | null): Promise<{ imported: number; skipped: number; file: string }>;
  /** The highest-version copy among the connected agents (read fresh from each). */
  resourceDatabase(): Promise<ResourceDatabase>;
  /**
   * Writes `db` as version db.version + 1 to every connected agent. Refused if the cluster's version is
   * no longer db.version (someone saved meanwhile: reload and make the change again).
   */
  saveResourceDatabase(db: ResourceDatabase): Promise<ResourceDatabase>;
  /** resource.create on request.server, then the resource database (equivalency priority 1). */
  createHierarchy(request: HierarchyRequest): Promise<{ tag: string; export: string; device: string | null; mountPoint: string | null; warning: string }>;
  /** mirror.accept on the target, mirror.extend on the source (undone if it fails), priorities saved. */
  extendHierarchy(request: ExtendForm): Promise<{ tag: string; target: string; mode: string; warning: string }>;
  /** mirror.unextend on the source, mirror.release on `server`; never the server where it is in service. */
  unextendHierarchy(tag: string, server: string): Promise<{ tag: string; server: string; warning: string }>;
  /** From every server: each target released, then the source's mirror deleted; the resources above it too. */
  deleteHierarchy(tag: string): Promise<{ tag: string; removed: string[]; warning: string }>;
  /** mirror.inservice on `server`: on a target this is the manual switchover (refused while it resyncs). */
  inService(tag: string, server: string): Promise<{ message: string }>;
  outOfService(tag: string, server: string): Promise<{ message: string }>;
  /** The resource database: parent depends on child (a parent is above its child in the hierarchy tree). */
  createDependency(parent: string, child: string): Promise<{ parent: string; child: string }>;
  deleteDependency(parent: string, child: string): Promise<{ parent: string; child: string }>;
}

/** Checks a call's method and arguments; returns the parsed arguments or throws an Error naming the field. */
export function parseConsoleCall(method: unknown, args: unknown): { method: ConsoleMethod; args: unknown[] } {
  if (typeof method !== 'string' || !Object.hasOwn(consoleMethods, method)) throw new Error(`unknown console method ${JSON.stringify(method)}`);
  const schema = consoleMethods[method as ConsoleMethod];
  const parsed = schema.safeParse(args);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? ` at ${issue.path.join('.')}` : '';
    throw new Error(`${method}: invalid argument${where}: ${issue.message}`);
  }
  return { method: method as ConsoleMethod, args: parsed.data as unknown[] };
}
