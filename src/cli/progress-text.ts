import type { Progress } from '../util/progress.js';
import { formatBytes, formatDuration } from './output.js';

/**
 * The status line's words for a Progress: elapsed time, percent, items and bytes done of the
 * totals found so far, rate, ETA, errors, and what is being worked on, most telling first (the
 * line is cut to the terminal's width).
 */
export function progressText(p: Progress, noun: string): string {
  const parts = [`[${formatDuration(p.seconds_elapsed * 1000)}]`];
  if (p.total_bytes > 0 || p.total_files > 0) parts.push(`${(p.percent_done * 100).toFixed(1)}%`);
  parts.push(`${p.files_done}${p.total_files ? ` / ${p.total_files}` : ''} ${noun}`);
  if (p.bytes_done > 0 || p.total_bytes > 0) parts.push(`${formatBytes(p.bytes_done)}${p.total_bytes ? ` / ${formatBytes(p.total_bytes)}` : ''}`);
  if (p.seconds_elapsed > 0 && p.bytes_done > 0) parts.push(`${formatBytes(p.bytes_done / p.seconds_elapsed)}/s`);
  if (p.seconds_remaining !== undefined) parts.push(`ETA ${formatDuration(p.seconds_remaining * 1000)}`);
  if (p.error_count > 0) parts.push(`${p.error_count} error${p.error_count === 1 ? '' : 's'}`);
  parts.push(...p.current_files);
  return parts.join('  ');
}
