// Inline SVG sparklines: a fixed-size polyline of the last N samples.

const NS = 'http://www.w3.org/2000/svg';

export class Sparkline {
  readonly node: SVGSVGElement;
  private line: SVGPolylineElement;
  private values: number[] = [];

  constructor(
    readonly label: string,
    private points = 60,
    private width = 120,
    private height = 24
  ) {
    this.node = document.createElementNS(NS, 'svg');
    this.node.setAttribute('class', 'pj-spark');
    this.node.setAttribute('width', String(width));
    this.node.setAttribute('height', String(height));
    this.node.setAttribute('viewBox', `0 0 ${width} ${height}`);
    this.node.setAttribute('data-label', label);
    this.line = document.createElementNS(NS, 'polyline');
    this.line.setAttribute('fill', 'none');
    this.line.setAttribute('stroke-width', '1.5');
    this.node.appendChild(this.line);
  }

  push(value: number, max?: number): void {
    this.values.push(value);
    if (this.values.length > this.points) {
      this.values.shift();
    }
    const top = Math.max(max || 0, ...this.values, 1e-9);
    const step = this.width / Math.max(1, this.points - 1);
    const coords = this.values.map((v, i) => {
      const x = (i + this.points - this.values.length) * step;
      const y = this.height - 1 - (v / top) * (this.height - 2);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    this.line.setAttribute('points', coords.join(' '));
    this.node.setAttribute('data-samples', String(this.values.length));
  }
}
