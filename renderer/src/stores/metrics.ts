// Recent throughput and queue depth of every mirror target, sampled from the status pushes, for the
// Replication Status charts. The agents report running byte counters; the rate is their difference.
import { defineStore } from 'pinia';
import { markRaw } from 'vue';
import type { ClusterView } from '../../../common/console-api.js';

/** Samples kept per target (at one push a second: two minutes). */
export const MAX_SAMPLES = 120;

export interface Series {
  /** Seconds since the epoch. */
  time: number[];
  /** Bytes per second sent to the target (writes and resync). */
  rate: number[];
  queue: number[];
  /** The last counter seen, for the next difference. */
  lastBytes: number;
  lastTime: number;
}

export const seriesKey = (tag: string, target: string): string => `${tag}\u0000${target}`;

/** Adds one sample per source→target pair in `view` taken at `now` (ms). Pure apart from `into`. */
export function sample(into: Map<string, Series>, view: ClusterView, now: number): void {
  for (const s of view.servers) {
    for (const m of s.mirrors) {
      if (m.role !== 'source') continue;
      for (const t of m.targets) {
        const key = seriesKey(m.tag, t.node);
        const total = t.bytesSent;
        const series = into.get(key);
        if (!series) {
          // The first push only sets the counter.
          into.set(key, { time: [], rate: [], queue: [], lastBytes: total, lastTime: now });
          continue;
        }
        const dt = (now - series.lastTime) / 1000;
        if (dt < 0.2) continue; // pushes closer than that would make a noisy rate
        // A restarted agent starts its counters at 0 again: count from there.
        const rate = total >= series.lastBytes ? (total - series.lastBytes) / dt : total / dt;
        series.time.push(now / 1000);
        series.rate.push(rate);
        series.queue.push(t.queueDepth);
        if (series.time.length > MAX_SAMPLES) {
          series.time.shift();
          series.rate.shift();
          series.queue.shift();
        }
        series.lastBytes = total;
        series.lastTime = now;
      }
    }
  }
}

export const useMetricsStore = defineStore('metrics', {
  state: () => ({
    /** Bumped with every sample so charts know to redraw (the series live outside reactivity). */
    revision: 0,
    // Kept out of reactivity (markRaw): hundreds of arrays that change every second need no deep proxies.
    data: markRaw(new Map<string, Series>()),
  }),
  actions: {
    record(view: ClusterView, now = Date.now()) {
      sample(this.data, view, now);
      this.revision++;
    },
    series(tag: string, target: string): Series | undefined {
      return this.data.get(seriesKey(tag, target));
    },
  },
});

