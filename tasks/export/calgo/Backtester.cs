// Strategy Lab's bar-by-bar runner for C# exports, built into the stand-in cAlgo.API assembly. It plays
// shipped bars through a cBot the way cTrader calls it and writes the closed trades as CSV:
//
//   mono harness.exe BOT.dll BARS.csv TRADES.csv SYMBOL TICK PIP CASH [--values=VALUES.csv] [NAME=VALUE ...]
//
// - The cBot reads the bars as given (as the engine does); orders fill at prices rounded to the symbol's
//   digits (a real symbol's prices lie on its tick grid; the shipped data carry float noise).
// - Bar t opens: Bars holds bars 0..t, bar t still forming (open only); OnBarClosed runs for bar t-1.
//   Market orders and closes fill at bar t's open, as in the engine (a signal at a close fills at the
//   next bar's open).
// - Stop-loss and take-profit lie `pips x PipSize` from the fill, on the tick grid away from the price
//   (a long's stop rounds down, its take-profit up; PyneCore does the same). Inside bar t the
//   price walks open -> nearer extreme -> farther extreme -> close (high first when high - open <
//   open - low, TradingView's and PyneCore's rule); a level the walk crosses fills at the level, or at
//   the open when the bar opens beyond it. A trailing stop follows the best price along the walk.
// - Parameters take their [Parameter] DefaultValue unless NAME=VALUE overrides them.
// - A position still open after the last bar is not a closed trade and is not written.
// - --values=VALUES.csv also writes, for every closed bar, the cBot's public double properties that are
//   not parameters (an export's fuzzy memberships and model outputs): what cTrader would show if the
//   cBot drew them, and how the tests compare them with the engine's.
using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Text;
using cAlgo.API;
using cAlgo.API.Indicators;
using cAlgo.API.Internals;

namespace StratLab.Harness
{
    public static class Program
    {
        public static int Main(string[] args)
        {
            if (args.Length < 7)
            {
                Console.Error.WriteLine("usage: harness.exe BOT.dll BARS.csv TRADES.csv SYMBOL TICK PIP CASH [NAME=VALUE ...]");
                return 2;
            }
            var inv = CultureInfo.InvariantCulture;
            var market = Market.Load(args[1]);
            var run = new Backtester(market, args[3], double.Parse(args[4], inv), double.Parse(args[5], inv),
                double.Parse(args[6], inv));
            const string valuesFlag = "--values=";
            string valuesPath = args.Skip(7).Where(a => a.StartsWith(valuesFlag, StringComparison.Ordinal))
                .Select(a => a.Substring(valuesFlag.Length)).LastOrDefault();
            var overrides = args.Skip(7).Where(a => !a.StartsWith(valuesFlag, StringComparison.Ordinal))
                .Select(a => a.Split(new[] { '=' }, 2)).ToDictionary(p => p[0], p => p[1]);
            var robot = Backtester.CreateRobot(Assembly.LoadFrom(args[0]), overrides);
            var values = valuesPath == null ? null : new ValueRecorder(robot);
            var trades = run.Run(robot, values);
            if (values != null)
                File.WriteAllText(valuesPath, values.Csv());
            var text = new StringBuilder("entry_bar,exit_bar,direction,entry_price,exit_price,size,pnl,exit_reason\n");
            foreach (var t in trades)
                text.AppendLine(string.Join(",", t.EntryBar, t.ExitBar, t.Direction, R(t.EntryPrice), R(t.ExitPrice),
                    R(t.Size), R(t.Pnl), t.Reason));
            File.WriteAllText(args[2], text.ToString());
            return 0;
        }

        private static string R(double x) { return x.ToString("R", CultureInfo.InvariantCulture); }
    }

    /// The bars of one market, read from CSV: time (unix seconds), open, high, low, close, volume.
    public sealed class Market
    {
        public DateTime[] Time; public double[] Open, High, Low, Close, Volume;

        public static Market Load(string path)
        {
            var rows = File.ReadAllLines(path).Skip(1).Where(l => l.Length > 0).Select(l => l.Split(',')).ToArray();
            var inv = CultureInfo.InvariantCulture;
            Func<int, double[]> col = i => rows.Select(r => double.Parse(r[i], inv)).ToArray();
            return new Market
            {
                Time = rows.Select(r => new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc)
                    .AddSeconds(long.Parse(r[0], inv))).ToArray(),
                Open = col(1), High = col(2), Low = col(3), Close = col(4), Volume = col(5),
            };
        }

        public int Count { get { return Time.Length; } }

        /// The bars with prices rounded to the symbol's digits: a real symbol's prices lie on its tick grid.
        public Market OnTicks(int digits)
        {
            Func<double[], double[]> round = xs => xs.Select(x => Math.Round(x, digits)).ToArray();
            return new Market { Time = Time, Open = round(Open), High = round(High), Low = round(Low), Close = round(Close), Volume = Volume };
        }
    }

    /// The cBot's public double properties that are not parameters, bar by bar (CSV: bar, one column each).
    public sealed class ValueRecorder
    {
        private readonly Robot _robot;
        private readonly PropertyInfo[] _props;
        private readonly StringBuilder _rows = new StringBuilder();

        public ValueRecorder(Robot robot)
        {
            _robot = robot;
            _props = robot.GetType()
                .GetProperties(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly)
                .Where(p => p.PropertyType == typeof(double) && p.GetCustomAttribute<ParameterAttribute>() == null)
                .OrderBy(p => p.MetadataToken).ToArray();
        }

        public void Record(int bar)
        {
            var inv = CultureInfo.InvariantCulture;
            _rows.Append(bar.ToString(inv));
            foreach (var p in _props)
                _rows.Append(',').Append(((double)p.GetValue(_robot)).ToString("R", inv));
            _rows.Append('\n');
        }

        public string Csv()
        {
            return "bar" + string.Concat(_props.Select(p => "," + p.Name)) + "\n" + _rows;
        }
    }

    public sealed class ClosedTrade
    {
        public int EntryBar, ExitBar; public string Direction, Reason;
        public double EntryPrice, ExitPrice, Size, Pnl;
    }

    public sealed class Backtester : IIndicatorsAccessor
    {
        private readonly Market _m;  // the prices orders fill at, on the tick grid
        private readonly MarketBars _bars;  // what the cBot reads: the bars as given (as the engine reads them)
        private readonly MarketSymbol _symbol;
        private readonly Book _book;
        private int _bar;  // the bar now forming

        public Backtester(Market market, string symbol, double tick, double pip, double cash)
        {
            _symbol = new MarketSymbol(symbol, tick, pip);
            _m = market.OnTicks(_symbol.Digits);
            _bars = new MarketBars(market, symbol);
            _symbol.Price = () => CurrentPrice;
            _book = new Book(this, cash);
        }

        public static Robot CreateRobot(Assembly bot, IDictionary<string, string> overrides)
        {
            var type = bot.GetTypes().Single(t => typeof(Robot).IsAssignableFrom(t) && !t.IsAbstract);
            var robot = (Robot)Activator.CreateInstance(type);
            foreach (var prop in type.GetProperties())
            {
                var attr = prop.GetCustomAttribute<ParameterAttribute>();
                if (attr == null) continue;
                string given;
                object value = overrides.TryGetValue(attr.Name ?? prop.Name, out given)
                    ? Convert.ChangeType(given, prop.PropertyType, CultureInfo.InvariantCulture)
                    : Convert.ChangeType(attr.DefaultValue, prop.PropertyType, CultureInfo.InvariantCulture);
                prop.SetValue(robot, value);
            }
            return robot;
        }

        public List<ClosedTrade> Run(Robot robot, ValueRecorder values = null)
        {
            robot.Bars = _bars; robot.Symbol = _symbol; robot.Account = _book; robot.Positions = _book;
            robot.Indicators = this;
            robot.MarketOrder = _book.Open;
            robot.Close = p => _book.CloseAt((MarketPosition)p, _m.Open[_bar], "close");
            robot.Log = Console.Error.WriteLine;
            SetBar(0);
            robot.Start();
            for (int t = 1; t < _m.Count; t++)
            {
                SetBar(t);
                robot.BarClosed();
                if (values != null)
                    values.Record(t - 1);
                _book.WalkBar(t, _m.Open[t], _m.High[t], _m.Low[t], _m.Close[t]);
            }
            robot.Stop();
            return _book.Closed;
        }

        private void SetBar(int t) { _bar = t; _bars.Forming = t; }

        internal int CurrentBar { get { return _bar; } }
        internal double CurrentPrice { get { return _m.Open[_bar]; } }
        internal MarketSymbol Symbol { get { return _symbol; } }

        public SimpleMovingAverage SimpleMovingAverage(DataSeries source, int periods)
        {
            return new SimpleMovingAverage(source, periods);
        }
    }

    /// Bars 0..Forming; the forming bar shows only its open (high = low = close = open) until it closes.
    internal sealed class MarketBars : Bars
    {
        private readonly Market _m;
        private readonly string _symbol;
        internal int Forming;

        public MarketBars(Market m, string symbol)
        {
            _m = m; _symbol = symbol;
            OpenPrices = new Series(this, i => _m.Open[i]);
            HighPrices = new Series(this, i => i == Forming ? _m.Open[i] : _m.High[i]);
            LowPrices = new Series(this, i => i == Forming ? _m.Open[i] : _m.Low[i]);
            ClosePrices = new Series(this, i => i == Forming ? _m.Open[i] : _m.Close[i]);
            TickVolumes = new Series(this, i => i == Forming ? 0.0 : _m.Volume[i]);
            OpenTimes = new Times(this, i => _m.Time[i]);
        }

        public int Count { get { return Forming + 1; } }
        public Bar this[int i]
        {
            get { return new Bar(OpenTimes[i], OpenPrices[i], HighPrices[i], LowPrices[i], ClosePrices[i], TickVolumes[i]); }
        }
        public Bar LastBar { get { return this[Count - 1]; } }
        public Bar Last(int index) { return this[Count - 1 - index]; }
        public DataSeries OpenPrices { get; private set; }
        public DataSeries HighPrices { get; private set; }
        public DataSeries LowPrices { get; private set; }
        public DataSeries ClosePrices { get; private set; }
        public DataSeries TickVolumes { get; private set; }
        public TimeSeries OpenTimes { get; private set; }
        public string SymbolName { get { return _symbol; } }

        public IEnumerator<Bar> GetEnumerator()
        {
            for (int i = 0; i < Count; i++) yield return this[i];
        }

        IEnumerator IEnumerable.GetEnumerator() { return GetEnumerator(); }

        private sealed class Series : DataSeries
        {
            private readonly MarketBars _bars; private readonly Func<int, double> _at;
            public Series(MarketBars bars, Func<int, double> at) { _bars = bars; _at = at; }
            public double this[int i] { get { return i >= 0 && i < _bars.Count ? _at(i) : double.NaN; } }
            public int Count { get { return _bars.Count; } }
            public double LastValue { get { return this[Count - 1]; } }
            public double Last(int index) { return this[Count - 1 - index]; }
            public IEnumerator<double> GetEnumerator()
            {
                for (int i = 0; i < Count; i++) yield return this[i];
            }
            IEnumerator IEnumerable.GetEnumerator() { return GetEnumerator(); }
        }

        private sealed class Times : TimeSeries
        {
            private readonly MarketBars _bars; private readonly Func<int, DateTime> _at;
            public Times(MarketBars bars, Func<int, DateTime> at) { _bars = bars; _at = at; }
            public DateTime this[int i] { get { return _at(i); } }
            public int Count { get { return _bars.Count; } }
            public DateTime LastValue { get { return this[Count - 1]; } }
            public DateTime Last(int index) { return this[Count - 1 - index]; }
        }
    }

    internal sealed class MarketSymbol : Symbol
    {
        public MarketSymbol(string name, double tick, double pip)
        {
            Name = name; TickSize = tick; PipSize = pip;
            Digits = (int)Math.Round(-Math.Log10(tick));
        }
        public string Name { get; private set; }
        public double TickSize { get; private set; }
        public double PipSize { get; private set; }
        public int Digits { get; private set; }
        internal Func<double> Price;  // the current price: the forming bar's open (no spread)
        public double Bid { get { return Price(); } }
        public double Ask { get { return Price(); } }
        public double VolumeInUnitsMin { get { return 0.000001; } }
        public double VolumeInUnitsStep { get { return 0.000001; } }

        public double NormalizeVolumeInUnits(double volume, RoundingMode mode)
        {
            double steps = volume / VolumeInUnitsStep;
            steps = mode == RoundingMode.Down ? Math.Floor(steps + 1e-9)
                : mode == RoundingMode.Up ? Math.Ceiling(steps - 1e-9) : Math.Round(steps);
            return Math.Max(steps * VolumeInUnitsStep, VolumeInUnitsMin);
        }

        /// A level on the tick grid, moved away from the price (down when `down`): a stop or take level the
        /// bar reaches on the grid was reached by the exact level too.
        public double RoundToTick(double price, bool down)
        {
            double ticks = price / TickSize;
            double whole = Math.Round(ticks);
            if (Math.Abs(ticks - whole) > 1e-9) whole = down ? Math.Floor(ticks) : Math.Ceiling(ticks);
            return Math.Round(whole * TickSize, Digits);
        }
    }

    internal sealed class MarketPosition : Position
    {
        private readonly Book _book;
        internal double Extreme;     // the best price since entry, for a trailing stop
        internal double TrailDistance;

        public MarketPosition(Book book) { _book = book; }
        public int Id { get; internal set; }
        public string SymbolName { get; internal set; }
        public TradeType TradeType { get; internal set; }
        public double VolumeInUnits { get; internal set; }
        public double EntryPrice { get; internal set; }
        public DateTime EntryTime { get; internal set; }
        public int EntryBar { get; internal set; }
        public double? StopLoss { get; internal set; }
        public double? TakeProfit { get; internal set; }
        public bool HasTrailingStop { get; internal set; }
        public string Label { get; internal set; }
        public string Comment { get; internal set; }
        internal int Sign { get { return TradeType == TradeType.Buy ? 1 : -1; } }

        public TradeResult ModifyStopLossPrice(double? stopLoss)
        {
            StopLoss = stopLoss.HasValue ? _book.Symbol.RoundToTick(stopLoss.Value, Sign > 0) : (double?)null;
            if (HasTrailingStop && StopLoss.HasValue) TrailDistance = Sign * (Extreme - StopLoss.Value);
            return new TradeResult(true, this, null);
        }

        public TradeResult ModifyTakeProfitPrice(double? takeProfit)
        {
            TakeProfit = takeProfit.HasValue ? _book.Symbol.RoundToTick(takeProfit.Value, Sign < 0) : (double?)null;
            return new TradeResult(true, this, null);
        }
    }

    /// The account: cash, open positions, and the walk of a bar that fills their stops.
    internal sealed class Book : IAccount, Positions
    {
        private readonly Backtester _run;
        private readonly List<MarketPosition> _open = new List<MarketPosition>();
        internal readonly List<ClosedTrade> Closed = new List<ClosedTrade>();
        private int _ids;

        public Book(Backtester run, double cash) { _run = run; Balance = cash; }
        internal MarketSymbol Symbol { get { return _run.Symbol; } }

        public double Balance { get; private set; }
        public double Equity
        {
            get { return Balance + _open.Sum(p => p.Sign * (_run.CurrentPrice - p.EntryPrice) * p.VolumeInUnits); }
        }

        internal TradeResult Open(TradeType type, double volume, string label, double? slPips, double? tpPips,
            string comment, bool trailing)
        {
            if (volume <= 0 || double.IsNaN(volume)) return new TradeResult(false, null, "BadVolume");
            double price = _run.CurrentPrice;
            var p = new MarketPosition(this)
            {
                Id = ++_ids, SymbolName = Symbol.Name, TradeType = type, VolumeInUnits = volume, EntryPrice = price,
                EntryBar = _run.CurrentBar, HasTrailingStop = trailing, Label = label, Comment = comment,
            };
            p.Extreme = price;
            double pip = Symbol.PipSize;
            if (slPips.HasValue && !double.IsNaN(slPips.Value)) p.ModifyStopLossPrice(price - p.Sign * slPips.Value * pip);
            if (tpPips.HasValue && !double.IsNaN(tpPips.Value)) p.ModifyTakeProfitPrice(price + p.Sign * tpPips.Value * pip);
            _open.Add(p);
            return new TradeResult(true, p, null);
        }

        internal TradeResult CloseAt(MarketPosition p, double price, string reason)
        {
            if (!_open.Remove(p)) return new TradeResult(false, p, "PositionNotFound");
            double pnl = p.Sign * (price - p.EntryPrice) * p.VolumeInUnits;
            Balance += pnl;
            Closed.Add(new ClosedTrade
            {
                EntryBar = p.EntryBar, ExitBar = _run.CurrentBar, Direction = p.Sign > 0 ? "long" : "short",
                EntryPrice = p.EntryPrice, ExitPrice = price, Size = p.VolumeInUnits, Pnl = pnl, Reason = reason,
            });
            return new TradeResult(true, p, null);
        }

        /// Walk bar t's path and fill the stops it reaches, in the order it reaches them.
        internal void WalkBar(int t, double open, double high, double low, double close)
        {
            bool highFirst = high - open < open - low;
            var path = highFirst ? new[] { open, high, low, close } : new[] { open, low, high, close };
            foreach (var p in _open.ToList())
            {
                if (Gap(p, open)) continue;
                for (int leg = 1; leg < path.Length && _open.Contains(p); leg++)
                    Leg(p, path[leg - 1], path[leg]);
            }
        }

        /// A bar that opens beyond a stop fills it at the open.
        private bool Gap(MarketPosition p, double open)
        {
            if (p.StopLoss.HasValue && p.Sign * (open - p.StopLoss.Value) <= 0)
            {
                CloseAt(p, open, "stop_loss");
                return true;
            }
            if (p.TakeProfit.HasValue && p.Sign * (open - p.TakeProfit.Value) >= 0)
            {
                CloseAt(p, open, "take_profit");
                return true;
            }
            return false;
        }

        /// One monotone leg from `from` to `to`: a leg in the position's favour can reach the take-profit and
        /// moves a trailing stop; a leg against it can reach the stop.
        private void Leg(MarketPosition p, double from, double to)
        {
            bool favourable = p.Sign * (to - from) > 0;
            if (favourable)
            {
                if (p.TakeProfit.HasValue && p.Sign * (to - p.TakeProfit.Value) >= 0)
                {
                    CloseAt(p, p.TakeProfit.Value, "take_profit");
                    return;
                }
                if (p.HasTrailingStop && p.StopLoss.HasValue && p.Sign * (to - p.Extreme) > 0)
                {
                    p.Extreme = to;
                    p.StopLoss = Symbol.RoundToTick(to - p.Sign * p.TrailDistance, p.Sign > 0);
                }
            }
            else if (p.StopLoss.HasValue && p.Sign * (to - p.StopLoss.Value) <= 0)
            {
                CloseAt(p, p.StopLoss.Value, "stop_loss");
            }
        }

        public int Count { get { return _open.Count; } }
        public Position this[int index] { get { return _open[index]; } }
        public Position Find(string label) { return _open.FirstOrDefault(p => p.Label == label); }
        public Position Find(string label, string symbolName)
        {
            return _open.FirstOrDefault(p => p.Label == label && p.SymbolName == symbolName);
        }
        public Position[] FindAll(string label) { return _open.Where(p => p.Label == label).ToArray(); }
        public IEnumerator<Position> GetEnumerator() { return _open.Cast<Position>().GetEnumerator(); }
        IEnumerator IEnumerable.GetEnumerator() { return GetEnumerator(); }
    }
}
