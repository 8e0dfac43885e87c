// The resource database: what the manual's LifeKeeper keeps on every server beyond the mirrors
// themselves — resource hierarchies (which resource depends on which), the servers each resource is
// defined on with their priorities (equivalencies), and the per-server failover flags. Every agent
// stores a copy (state/resource-db.json, atomic write); the copy with the highest version wins, and
// the console writes a change to every reachable node with version + 1.
// Pure types and checks: the agent, the console backend and the wizards share them.

/** datakeeper: a mirror (its tag is the mirror's tag); filesystem: a file system over a datakeeper
 * resource; generic: any other resource an administrator places in a hierarchy (an application). */
export type ResourceKind = 'datakeeper' | 'filesystem' | 'generic';

/** One server a resource is defined on (the manual's equivalency) and its priority there. */
export interface ResourceInstance {
  server: string;
  /** 1–999, unique per resource; lower is preferred (1 = highest, the server it was created on). */
  priority: number;
}

export interface ResourceDefinition {
  tag: string;
  kind: ResourceKind;
  /** filesystem: the mount point and type. */
  mountPoint?: string;
  fstype?: string;
  /** The tags this resource depends on (its children in the hierarchy tree). */
  dependsOn: string[];
  instances: ResourceInstance[];
  /** The manual: only intelligent switchback for DataKeeper hierarchies. */
  switchback: 'intelligent';
}

/** Per server: the manual's Confirm Failover On (per other server) and Block Resource Failover On. */
export interface ServerFlags {
  server: string;
  /** Servers from which a failover to this server needs the administrator's confirmation. */
  confirmFailoverFrom: string[];
  blockResourceFailover: boolean;
}

export interface ResourceDatabase {
  /** Increases by one with every change; the highest version seen on any node is the truth. */
  version: number;
  resources: ResourceDefinition[];
  flags: ServerFlags[];
}

export const EMPTY_RESOURCE_DATABASE: ResourceDatabase = { version: 0, resources: [], flags: [] };

export const MIN_PRIORITY = 1;
export const MAX_PRIORITY = 999;
