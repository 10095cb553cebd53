package org.retroinfer.store.inspect;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.StringReader;
import java.util.Arrays;
import java.util.SplittableRandom;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;
import org.xml.sax.InputSource;

/**
 * The report's hand-written SVG charts (see the README for why they are not drawn by a chart
 * library): each is well-formed XML, and what is drawn matches the numbers given.
 */
class HtmlReportTest {
  final SplittableRandom random = new SplittableRandom();

  static Document svg(StringBuilder h) throws Exception {
    String s = h.toString();
    assertTrue(s.startsWith("<svg ") && s.strip().endsWith("</svg>"), s);
    return DocumentBuilderFactory.newInstance().newDocumentBuilder()
        .parse(new InputSource(new StringReader(s)));
  }

  static double attr(Element e, String name) {
    return Double.parseDouble(e.getAttribute(name));
  }

  @Test
  void barHeightsAreProportionalToTheValues() throws Exception {
    int n = 3 + random.nextInt(10);
    double[] values = new double[n];
    String[] labels = new String[n];
    for (int i = 0; i < n; i++) {
      values[i] = random.nextInt(5000);
      labels[i] = i + "<&>";
    }
    values[random.nextInt(n)] = 5000 + random.nextInt(100); // a clear maximum
    StringBuilder h = new StringBuilder();
    HtmlReport.bars(h, labels, values, "clusters", "tokens per cluster");
    NodeList rects = svg(h).getElementsByTagName("rect");
    assertEquals(n, rects.getLength());
    double max = Arrays.stream(values).max().orElseThrow();
    double tallest = 0;
    for (int i = 0; i < n; i++) {
      tallest = Math.max(tallest, attr((Element) rects.item(i), "height"));
    }
    for (int i = 0; i < n; i++) {
      Element r = (Element) rects.item(i);
      assertEquals(values[i] / max, attr(r, "height") / tallest, 0.002, "bar " + i);
      assertEquals(labels[i] + ": " + (long) values[i], r.getTextContent(), "the bar's tooltip");
      if (i > 0) {
        assertTrue(attr(r, "x") > attr((Element) rects.item(i - 1), "x"), "bars left to right");
      }
    }
  }

  @Test
  void curvePointsFollowTheCapturedMass() throws Exception {
    int n = 4 + random.nextInt(6);
    double[] budgets = new double[n];
    double[] ranked = new double[n];
    double[] oracle = new double[n];
    for (int i = 0; i < n; i++) {
      budgets[i] = 0.005 * Math.pow(2, i);
      ranked[i] = random.nextDouble();
      oracle[i] = random.nextDouble();
    }
    ranked[0] = 0; // the axis ends: where a mass of 0 and of 1 are drawn
    ranked[n - 1] = 1;
    StringBuilder h = new StringBuilder();
    HtmlReport.curve(h, budgets, ranked, oracle);
    Document d = svg(h);
    NodeList circles = d.getElementsByTagName("circle");
    assertEquals(2 * n, circles.getLength());
    assertEquals(2, d.getElementsByTagName("polyline").getLength());
    double y0 = attr((Element) circles.item(0), "cy");
    double y1 = attr((Element) circles.item(n - 1), "cy");
    assertTrue(y1 < y0, "more mass is drawn higher up");
    for (int i = 0; i < n; i++) {
      Element r = (Element) circles.item(i);
      Element o = (Element) circles.item(n + i);
      assertEquals(y0 + (y1 - y0) * ranked[i], attr(r, "cy"), 0.11, "ranking point " + i);
      assertEquals(y0 + (y1 - y0) * oracle[i], attr(o, "cy"), 0.11, "oracle point " + i);
      assertEquals(attr(r, "cx"), attr(o, "cx"), 1e-9, "both series share the budget axis");
      if (i > 1) {
        double step = attr(r, "cx") - attr((Element) circles.item(i - 1), "cx");
        double previous = attr((Element) circles.item(i - 1), "cx")
            - attr((Element) circles.item(i - 2), "cx");
        assertEquals(previous, step, 0.21, "budgets doubling are evenly spaced on a log axis");
      }
    }
  }
}
