// This node's copy of the resource database (hierarchies, equivalencies, failover flags), like the
// manual's LifeKeeper database on every server. Written atomically; a newer version replaces it, an
// older or equal one is refused so two consoles cannot silently overwrite each other.
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../common/atomic-file.js';
import { checkResourceDatabase, EMPTY_RESOURCE_DATABASE, type ResourceDatabase } from '../../common/resource-database.js';

export class StaleResourceDatabase extends Error {}

export class ResourceDbStore {
  readonly file: string;
  private current: ResourceDatabase;

  constructor(stateDir: string, warn: (message: string) => void) {
    this.file = path.join(stateDir, 'resource-db.json');
    this.current = this.load(warn);
  }

  private load(warn: (message: string) => void): ResourceDatabase {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY_RESOURCE_DATABASE;
      throw err;
    }
    try {
      return checkResourceDatabase(JSON.parse(text));
    } catch (err) {
      // Kept aside, never deleted: the console writes the cluster's newest copy here on its next save.
      const aside = `${this.file}.damaged-${Date.now()}`;
      fs.renameSync(this.file, aside);
      warn(`${this.file} was unreadable (${(err as Error).message}); moved to ${aside}, starting with an empty resource database`);
      return EMPTY_RESOURCE_DATABASE;
    }
  }

  get database(): ResourceDatabase {
    return this.current;
  }

  /** Stores `v` if it is valid and newer than the stored copy; returns what is stored now. */
  save(v: unknown): ResourceDatabase {
    const db = checkResourceDatabase(v);
    if (db.version <= this.current.version) {
      throw new StaleResourceDatabase(`resource database version ${db.version} is not newer than this node's (${this.current.version}); read it again (resource.database) and save your change with the version you read + 1`);
    }
    writeFileAtomic(this.file, JSON.stringify(db, null, 2) + '\n', 0o600);
    this.current = db;
    return db;
  }
}
