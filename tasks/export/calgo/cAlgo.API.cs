// A stand-in for cTrader Automate's cAlgo.API: the part of its surface that Strategy Lab's C# exports
// use, written from cTrader's published API reference (namespaces, type and member names, signatures).
// It is NOT Spotware's assembly: it exists so that every export is compiled (Debian's mono-mcs) and run
// (Backtester.cs) here. Member semantics follow the reference: OnBarClosed is called when a new bar
// opens, for the bar before it (Bars.Last(1)); market orders fill at the current price (the new bar's
// open); stop-loss and take-profit distances are in pips from the entry price.
// C# 7.3 syntax at most, as cTrader's older .NET Framework target compiles.
using System;
using System.Collections;
using System.Collections.Generic;
using cAlgo.API.Internals;

namespace cAlgo.API
{
    public enum AccessRights { None, Internet, FileSystem, Registry, FullAccess }

    public static class TimeZones
    {
        public const string UTC = "UTC";
    }

    [AttributeUsage(AttributeTargets.Class)]
    public sealed class RobotAttribute : Attribute
    {
        public AccessRights AccessRights { get; set; }
        public string TimeZone { get; set; }
        public bool AddIndicators { get; set; }
    }

    [AttributeUsage(AttributeTargets.Property)]
    public sealed class ParameterAttribute : Attribute
    {
        public ParameterAttribute() { }
        public ParameterAttribute(string name) { Name = name; }
        public string Name { get; set; }
        public object DefaultValue { get; set; }
        public double MinValue { get; set; }
        public double MaxValue { get; set; }
        public double Step { get; set; }
        public string Group { get; set; }
    }

    public enum TradeType { Buy, Sell }

    public enum RoundingMode { ToNearest, Down, Up }

    public interface DataSeries : IEnumerable<double>
    {
        double this[int index] { get; }
        int Count { get; }
        double LastValue { get; }
        double Last(int index);
    }

    public interface IndicatorDataSeries : DataSeries
    {
        new double this[int index] { get; set; }
    }

    public interface TimeSeries
    {
        DateTime this[int index] { get; }
        int Count { get; }
        DateTime LastValue { get; }
        DateTime Last(int index);
    }

    public struct Bar
    {
        public Bar(DateTime openTime, double open, double high, double low, double close, double tickVolume)
        {
            OpenTime = openTime; Open = open; High = high; Low = low; Close = close; TickVolume = tickVolume;
        }
        public DateTime OpenTime { get; private set; }
        public double Open { get; private set; }
        public double High { get; private set; }
        public double Low { get; private set; }
        public double Close { get; private set; }
        public double TickVolume { get; private set; }
    }

    public interface Bars : IEnumerable<Bar>
    {
        int Count { get; }
        Bar this[int index] { get; }
        Bar LastBar { get; }
        Bar Last(int index);
        DataSeries OpenPrices { get; }
        DataSeries HighPrices { get; }
        DataSeries LowPrices { get; }
        DataSeries ClosePrices { get; }
        DataSeries TickVolumes { get; }
        TimeSeries OpenTimes { get; }
        string SymbolName { get; }
    }

    public interface Position
    {
        int Id { get; }
        string SymbolName { get; }
        TradeType TradeType { get; }
        double VolumeInUnits { get; }
        double EntryPrice { get; }
        DateTime EntryTime { get; }
        double? StopLoss { get; }
        double? TakeProfit { get; }
        bool HasTrailingStop { get; }
        string Label { get; }
        string Comment { get; }
        TradeResult ModifyStopLossPrice(double? stopLoss);
        TradeResult ModifyTakeProfitPrice(double? takeProfit);
    }

    public interface Positions : IEnumerable<Position>
    {
        int Count { get; }
        Position this[int index] { get; }
        Position Find(string label);
        Position Find(string label, string symbolName);
        Position[] FindAll(string label);
    }

    public class TradeResult
    {
        public TradeResult(bool isSuccessful, Position position, string error)
        {
            IsSuccessful = isSuccessful; Position = position; Error = error;
        }
        public bool IsSuccessful { get; private set; }
        public Position Position { get; private set; }
        public string Error { get; private set; }
    }

    public interface IIndicatorsAccessor
    {
        cAlgo.API.Indicators.SimpleMovingAverage SimpleMovingAverage(DataSeries source, int periods);
    }

    /// The base of a cBot. The platform (here: Backtester) sets the market state and calls the events.
    public abstract class Robot
    {
        public Bars Bars { get; internal set; }
        public Symbol Symbol { get; internal set; }
        public string SymbolName { get { return Symbol.Name; } }
        public IAccount Account { get; internal set; }
        public Positions Positions { get; internal set; }
        public IIndicatorsAccessor Indicators { get; internal set; }
        internal Func<TradeType, double, string, double?, double?, string, bool, TradeResult> MarketOrder;
        internal Func<Position, TradeResult> Close;
        internal Action<string> Log;

        protected virtual void OnStart() { }
        protected virtual void OnBar() { }
        protected virtual void OnBarClosed() { }
        protected virtual void OnStop() { }

        internal void Start() { OnStart(); }
        internal void BarClosed() { OnBarClosed(); }
        internal void Stop() { OnStop(); }

        public TradeResult ExecuteMarketOrder(TradeType tradeType, string symbolName, double volume, string label,
            double? stopLossPips, double? takeProfitPips, string comment, bool hasTrailingStop)
        {
            if (symbolName != SymbolName)
                return new TradeResult(false, null, "SymbolNotFound");
            return MarketOrder(tradeType, volume, label, stopLossPips, takeProfitPips, comment, hasTrailingStop);
        }

        public TradeResult ExecuteMarketOrder(TradeType tradeType, string symbolName, double volume, string label,
            double? stopLossPips, double? takeProfitPips)
        {
            return ExecuteMarketOrder(tradeType, symbolName, volume, label, stopLossPips, takeProfitPips, null, false);
        }

        public TradeResult ClosePosition(Position position) { return Close(position); }

        public void Print(string message, params object[] args)
        {
            if (Log != null) Log(args.Length == 0 ? message : string.Format(message, args));
        }
    }
}

namespace cAlgo.API.Internals
{
    public interface Symbol
    {
        string Name { get; }
        double TickSize { get; }
        double PipSize { get; }
        int Digits { get; }
        double Bid { get; }
        double Ask { get; }
        double VolumeInUnitsMin { get; }
        double VolumeInUnitsStep { get; }
        double NormalizeVolumeInUnits(double volume, RoundingMode roundingMode);
    }

    public interface IAccount
    {
        double Balance { get; }
        double Equity { get; }
    }
}

namespace cAlgo.API.Indicators
{
    /// cTrader's built-in simple moving average: the mean of the last `periods` values of the source.
    public class SimpleMovingAverage
    {
        private readonly DataSeries _source;
        private readonly int _periods;
        private readonly ComputedSeries _result;

        public SimpleMovingAverage(DataSeries source, int periods)
        {
            _source = source; _periods = periods;
            _result = new ComputedSeries(source, Calculate);
        }

        public IndicatorDataSeries Result { get { return _result; } }

        private double Calculate(int index)
        {
            if (index < _periods - 1) return double.NaN;
            double sum = 0;
            for (int i = index - _periods + 1; i <= index; i++) sum += _source[i];
            return sum / _periods;
        }
    }

    /// An indicator's output series, computed on demand for every index the source has.
    internal sealed class ComputedSeries : IndicatorDataSeries
    {
        private readonly DataSeries _source;
        private readonly Func<int, double> _calculate;
        private readonly List<double> _values = new List<double>();

        public ComputedSeries(DataSeries source, Func<int, double> calculate)
        {
            _source = source; _calculate = calculate;
        }

        // Values of closed bars are kept; the last bar is still forming, so its value is computed afresh.
        public double this[int index]
        {
            get
            {
                if (index < 0 || index >= _source.Count) return double.NaN;
                if (index == _source.Count - 1) return _calculate(index);
                while (_values.Count <= index) _values.Add(_calculate(_values.Count));
                return _values[index];
            }
            set
            {
                while (_values.Count <= index) _values.Add(double.NaN);
                _values[index] = value;
            }
        }

        public int Count { get { return _source.Count; } }
        public double LastValue { get { return this[Count - 1]; } }
        public double Last(int index) { return this[Count - 1 - index]; }

        public IEnumerator<double> GetEnumerator()
        {
            for (int i = 0; i < Count; i++) yield return this[i];
        }

        IEnumerator IEnumerable.GetEnumerator() { return GetEnumerator(); }
    }
}
