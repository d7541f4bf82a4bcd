// The weekly schedule grid: 7 days x 24 hours, each cell the upload rate of that hour. Paint
// with the mouse or a finger (press and drag over cells) or the keyboard (arrow keys move,
// Space or Enter paints, Shift+arrow paints while moving). Rates are tokens of the rclone
// timetable; lib/timetable.ts converts.

import { useEffect, useRef, useState } from 'preact/hooks';
import { DAYS, HOURS, UNLIMITED, legendOf, type Grid } from '../lib/timetable';

const kPalette = 6; // rate colours r-0 .. r-5 in the stylesheet

function hh(h: number): string {
  return `${h < 10 ? '0' : ''}${h}:00`;
}

// The colour class of each token: unlimited/off are plain, 0 is "paused", others by order.
export function colourClasses(grid: Grid): Map<string, string> {
  const map = new Map<string, string>();
  let i = 0;
  for (const t of legendOf(grid)) {
    if (t === UNLIMITED || t === 'off' || t === 'off:off' || t === 'unlimited:unlimited') map.set(t, 'r-unl');
    else if (/^0+(\.0+)?[bkmgtBKMGT]?$/.test(t)) map.set(t, 'r-paused');
    else map.set(t, `r-${i++ % kPalette}`);
  }
  return map;
}

export function ScheduleGrid({
  grid,
  onPaint,
  canPaint,
  disabled,
}: {
  grid: Grid;
  // Paints one cell; returns false when the rate is not valid (painting stops).
  onPaint: (day: number, hour: number) => boolean;
  canPaint: () => boolean;
  disabled?: boolean;
}) {
  const [focus, setFocus] = useState<[number, number]>([0, 0]);
  const painting = useRef(false);
  const table = useRef<HTMLTableElement>(null);
  const colours = colourClasses(grid);

  useEffect(() => {
    const stop = () => (painting.current = false);
    window.addEventListener('pointerup', stop);
    window.addEventListener('pointercancel', stop);
    return () => {
      window.removeEventListener('pointerup', stop);
      window.removeEventListener('pointercancel', stop);
    };
  }, []);

  const cellAt = (x: number, y: number): [number, number] | null => {
    const el = document.elementFromPoint(x, y) as HTMLElement | null;
    const td = el?.closest?.('td[data-d]') as HTMLElement | null;
    if (!td || !table.current?.contains(td)) return null;
    return [Number(td.dataset['d']), Number(td.dataset['h'])];
  };

  const focusCell = (d: number, h: number) => {
    setFocus([d, h]);
    table.current?.querySelector<HTMLElement>(`td[data-d="${d}"][data-h="${h}"]`)?.focus();
  };

  const onKey = (e: KeyboardEvent, d: number, h: number) => {
    if (disabled) return;
    let nd = d;
    let nh = h;
    switch (e.key) {
      case 'ArrowLeft':
        nh = Math.max(0, h - 1);
        break;
      case 'ArrowRight':
        nh = Math.min(HOURS - 1, h + 1);
        break;
      case 'ArrowUp':
        nd = Math.max(0, d - 1);
        break;
      case 'ArrowDown':
        nd = Math.min(6, d + 1);
        break;
      case 'Home':
        nh = 0;
        break;
      case 'End':
        nh = HOURS - 1;
        break;
      case ' ':
      case 'Enter':
        e.preventDefault();
        onPaint(d, h);
        return;
      default:
        return;
    }
    e.preventDefault();
    focusCell(nd, nh);
    if (e.shiftKey) onPaint(nd, nh);
  };

  return (
    <div class="schedule-wrap">
      <table
        ref={table}
        class={`schedule ${disabled ? 'is-disabled' : ''}`}
        role="grid"
        aria-label="Weekly schedule"
        aria-readonly={disabled ? 'true' : undefined}
        aria-describedby="schedule-help"
      >
        <thead>
          <tr>
            <th scope="col" class="schedule-corner">
              <span class="sr-only">Day</span>
            </th>
            {Array.from({ length: HOURS }, (_, h) => (
              <th scope="col" key={h} class="schedule-hour" abbr={hh(h)}>
                {h % 3 === 0 ? String(h).padStart(2, '0') : <span class="sr-only">{hh(h)}</span>}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {DAYS.map((day, d) => (
            <tr key={day}>
              <th scope="row" class="schedule-day">
                {day}
              </th>
              {grid[d]!.map((rate, h) => {
                const focused = focus[0] === d && focus[1] === h;
                return (
                  <td
                    key={h}
                    data-d={d}
                    data-h={h}
                    class={`cell ${colours.get(rate) ?? ''} ${h % 6 === 0 ? 'cell-6' : ''}`}
                    tabIndex={focused ? 0 : -1}
                    aria-label={`${day} ${hh(h)}, ${rate}`}
                    title={`${day} ${hh(h)}–${hh((h + 1) % 24)}: ${rate}`}
                    onFocus={() => setFocus([d, h])}
                    onKeyDown={(e) => onKey(e, d, h)}
                    onPointerDown={(e) => {
                      if (disabled || e.button !== 0) return;
                      e.preventDefault();
                      focusCell(d, h);
                      if (!canPaint()) return;
                      painting.current = onPaint(d, h);
                      // Touch pointers are captured by the first cell: release so that moves
                      // are followed across cells through elementFromPoint.
                      (e.currentTarget as HTMLElement).releasePointerCapture?.(e.pointerId);
                    }}
                    onPointerMove={(e) => {
                      if (!painting.current) return;
                      const at = cellAt(e.clientX, e.clientY);
                      if (at) onPaint(at[0], at[1]);
                    }}
                    onPointerEnter={() => {
                      if (painting.current) onPaint(d, h);
                    }}
                  />
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
