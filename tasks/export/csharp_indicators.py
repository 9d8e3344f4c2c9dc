"""The indicators a C# export carries in its own file, in C# 7 syntax: TradingView's definitions (the
engine's, ``tasks/indicators.py``), bar by bar.

cTrader's built-ins are used only where their definition is the same: ``SimpleMovingAverage`` (the mean
of the last n values). Its exponential averages, RSI, ATR and MACD are not documented to start from an
SMA of the first n values as Pine's ``ta.ema``/``ta.rma`` do, and its Bollinger Bands do not say which
standard deviation they use, so their first hundreds of values (and every cross there) could differ;
the export computes them itself. Each class takes the closed bars in order and answers NaN while it
is warming up, as the engine does.
"""

from __future__ import annotations

CLASSES: dict[str, str] = {
    "Sma": """
        /// ta.sma: the mean of the last n values; NaN until n defined values are there.
        private sealed class Sma
        {
            private readonly int _n;
            private readonly Queue<double> _window = new Queue<double>();
            public Sma(int n) { _n = n; }
            public double Next(double x)
            {
                if (double.IsNaN(x)) { _window.Clear(); return double.NaN; }
                _window.Enqueue(x);
                if (_window.Count > _n) _window.Dequeue();
                if (_window.Count < _n) return double.NaN;
                double sum = 0;
                foreach (var v in _window) sum += v;
                return sum / _n;
            }
        }""",
    "Ewm": """
        /// Pine's seeded exponential average: the SMA of the first n values, then alpha * x + (1 - alpha) * previous.
        private sealed class Ewm
        {
            private readonly double _alpha;
            private readonly Sma _seed;
            private double _value = double.NaN;
            public Ewm(int n, double alpha) { _alpha = alpha; _seed = new Sma(n); }
            public static Ewm Ema(int n) { return new Ewm(n, 2.0 / (n + 1)); }
            public static Ewm Rma(int n) { return new Ewm(n, 1.0 / n); }
            public double Value { get { return _value; } }
            public double Next(double x)
            {
                _value = double.IsNaN(_value) ? _seed.Next(x) : _alpha * x + (1 - _alpha) * _value;
                return _value;
            }
        }""",
    "Rsi": """
        /// ta.rsi: Wilder's averages (RMA) of the gains and losses; 100 when there are no losses, 0 when no gains.
        private sealed class Rsi
        {
            private readonly Ewm _up, _down;
            private double _previous = double.NaN;
            public double Value = double.NaN;
            public Rsi(int n) { _up = Ewm.Rma(n); _down = Ewm.Rma(n); }
            public void Next(double close)
            {
                double change = close - _previous;
                _previous = close;
                double up = _up.Next(double.IsNaN(change) ? double.NaN : Math.Max(change, 0));
                double down = _down.Next(double.IsNaN(change) ? double.NaN : Math.Max(-change, 0));
                if (double.IsNaN(up) || double.IsNaN(down)) Value = double.NaN;
                else if (down == 0) Value = 100;
                else if (up == 0) Value = 0;
                else Value = 100 - 100 / (1 + up / down);
            }
        }""",
    "Atr": """
        /// ta.atr: Wilder's average (RMA) of the true range; the first bar's true range is its high - low.
        private sealed class Atr
        {
            private readonly Ewm _average;
            private double _previousClose = double.NaN;
            public Atr(int n) { _average = Ewm.Rma(n); }
            public double Value { get { return _average.Value; } }
            public void Next(double high, double low, double close)
            {
                double range = high - low;
                if (!double.IsNaN(_previousClose))
                    range = Math.Max(range, Math.Max(Math.Abs(high - _previousClose), Math.Abs(low - _previousClose)));
                _previousClose = close;
                _average.Next(range);
            }
        }""",
    "Macd": """
        /// ta.macd: EMA(fast) - EMA(slow), its EMA as the signal line, and their difference.
        private sealed class Macd
        {
            private readonly Ewm _fast, _slow, _signal;
            public double Line, Signal, Hist;
            public Macd(int fast, int slow, int signal)
            {
                _fast = Ewm.Ema(fast);
                _slow = Ewm.Ema(slow);
                _signal = Ewm.Ema(signal);
            }
            public void Next(double close)
            {
                Line = _fast.Next(close) - _slow.Next(close);
                Signal = _signal.Next(Line);
                Hist = Line - Signal;
            }
        }""",
    "Bands": """
        /// ta.bb: SMA(n) +/- alpha x the population standard deviation of the last n closes.
        private sealed class Bands
        {
            private readonly int _n;
            private readonly double _alpha;
            private readonly Queue<double> _window = new Queue<double>();
            public double Middle, Upper, Lower, PercentB, Bandwidth;
            public Bands(int n, double alpha) { _n = n; _alpha = alpha; }
            public void Next(double close)
            {
                _window.Enqueue(close);
                if (_window.Count > _n) _window.Dequeue();
                Middle = Upper = Lower = PercentB = Bandwidth = double.NaN;
                if (_window.Count < _n) return;
                double sum = 0, squares = 0;
                foreach (var v in _window) sum += v;
                Middle = sum / _n;
                foreach (var v in _window) squares += (v - Middle) * (v - Middle);
                double dev = _alpha * Math.Sqrt(squares / _n);
                Upper = Middle + dev;
                Lower = Middle - dev;
                double width = Upper - Lower;
                PercentB = width != 0 ? (close - Lower) / width : double.NaN;
                Bandwidth = Middle != 0 ? width / Middle : double.NaN;
            }
        }""",
    "Roc": """
        /// ta.roc: 100 x (close - close n bars ago) / close n bars ago.
        private sealed class Roc
        {
            private readonly int _n;
            private readonly Queue<double> _closes = new Queue<double>();
            public double Value = double.NaN;
            public Roc(int n) { _n = n; }
            public void Next(double close)
            {
                _closes.Enqueue(close);
                if (_closes.Count > _n + 1) _closes.Dequeue();
                double past = _closes.Peek();
                Value = _closes.Count == _n + 1 && past != 0 ? 100 * (close - past) / past : double.NaN;
            }
        }""",
    "Stoch": """
        /// ta.stoch: %K = 100 x (close - lowest low) / (highest high - lowest low) over k bars; %D = SMA(%K, d).
        private sealed class Stoch
        {
            private readonly int _k;
            private readonly Queue<double> _highs = new Queue<double>(), _lows = new Queue<double>();
            private readonly Sma _d;
            public double K, D;
            public Stoch(int k, int d) { _k = k; _d = new Sma(d); }
            public void Next(double high, double low, double close)
            {
                _highs.Enqueue(high);
                _lows.Enqueue(low);
                if (_highs.Count > _k) { _highs.Dequeue(); _lows.Dequeue(); }
                K = double.NaN;
                if (_highs.Count == _k)
                {
                    double highest = double.MinValue, lowest = double.MaxValue;
                    foreach (var v in _highs) highest = Math.Max(highest, v);
                    foreach (var v in _lows) lowest = Math.Min(lowest, v);
                    K = highest != lowest ? 100 * (close - lowest) / (highest - lowest) : double.NaN;
                }
                D = _d.Next(K);
            }
        }""",
}

# Which classes each catalog indicator needs (a class's own dependencies included).
NEEDS: dict[str, tuple[str, ...]] = {
    "ema": ("Sma", "Ewm"),
    "rsi": ("Sma", "Ewm", "Rsi"),
    "atr": ("Sma", "Ewm", "Atr"),
    "macd": ("Sma", "Ewm", "Macd"),
    "bbands": ("Bands",),
    "roc": ("Roc",),
    "stoch": ("Sma", "Stoch"),
    "sma": (),  # cTrader's built-in SimpleMovingAverage
}
