// An export: a name, the store behind it, and the transmission flags it advertises.
import type { BlockStore } from '../storage/block-store.js';
import { TF } from './protocol.js';

export interface NbdExport {
  readonly name: string;
  readonly description: string;
  readonly store: BlockStore;
  readonly size: number;
  readonly transmissionFlags: number;
}

export function makeExport(name: string, store: BlockStore, description = ''): NbdExport {
  // CAN_MULTI_CONN is true because every connection shares one store, whose flush covers writes
  // completed through any connection (see BlockStore.flush).
  let flags = TF.HAS_FLAGS | TF.SEND_FLUSH | TF.SEND_FUA | TF.CAN_MULTI_CONN;
  if (store.readOnly) flags |= TF.READ_ONLY;
  else {
    flags |= TF.SEND_TRIM | TF.SEND_WRITE_ZEROES;
    if (store.canFastZero) flags |= TF.SEND_FAST_ZERO;
  }
  return { name, description, store, size: store.size, transmissionFlags: flags };
}
