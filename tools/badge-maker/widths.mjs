// Reference badges for tests/test_badges.py: what shields.io's badge-maker makes of given texts.
//
// stdin: a JSON array of {"label": string, "message": string, "color": string}
// stdout: a JSON array, one object per input, in order:
//   {"svg": the flat badge SVG, "width": the badge width (px),
//    "labelWidth" / "messageWidth": the text widths (textLength / 10) or null without that text,
//    "leftWidth": width of the label rect (px),
//    "labelRaw" / "messageRaw": anafanafo's unrounded widths of the texts (11px Verdana)}
import { readFileSync } from 'node:fs'
import anafanafo from 'anafanafo'
import { makeBadge } from 'badge-maker'

const items = JSON.parse(readFileSync(0, 'utf8'))

function textLengths(svg) {
  // Each text is drawn twice (shadow, then text): take every second textLength.
  const all = [...svg.matchAll(/textLength="([0-9.]+)"/g)].map(m => Number(m[1]) / 10)
  return all.filter((_, i) => i % 2 === 1)
}

const out = items.map(({ label, message, color }) => {
  const svg = makeBadge({ label, message, color: color || 'lightgrey', style: 'flat' })
  const width = Number(/^<svg [^>]*?width="([0-9.]+)"/.exec(svg)[1])
  const leftWidth = Number(/<g clip-path="url\(#r\)"><rect width="([0-9.]+)"/.exec(svg)[1])
  const lengths = textLengths(svg)
  const hasLabel = label.trim().length > 0
  const hasMessage = message.trim().length > 0
  return {
    svg,
    width,
    leftWidth,
    labelWidth: hasLabel ? lengths[0] : null,
    messageWidth: hasMessage ? lengths[hasLabel ? 1 : 0] : null,
    labelRaw: anafanafo(label, { font: '11px Verdana' }),
    messageRaw: anafanafo(message, { font: '11px Verdana' }),
  }
})
process.stdout.write(JSON.stringify(out))
